"""edgemoe.sim"""
