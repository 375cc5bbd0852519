"""edgemoe.codegen"""
