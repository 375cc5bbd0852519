"""edgemoe.host"""
