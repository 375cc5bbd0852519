"""edgemoe.boards"""
