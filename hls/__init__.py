"""edgemoe.hls: C++ and Verilog templates and headers (data files)."""
