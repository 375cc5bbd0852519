"""cocotb benches of the RTL units, one module per unit (edgemoe.sim.benches.<unit>)."""
