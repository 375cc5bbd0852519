// Throwaway AXI-Stream unit for the simulation-runner tests (not part of the accelerator):
// out = in + 1, one register stage, full rate. STALL=1 never accepts input (a hung unit).
`timescale 1ns / 1ps
module edgemoe_passthru #(parameter W = 32, parameter STALL = 0) (
    input  wire         ap_clk,
    input  wire         ap_rst_n,
    input  wire [W-1:0] in_r_TDATA,
    input  wire         in_r_TVALID,
    output wire         in_r_TREADY,
    output wire [W-1:0] out_r_TDATA,
    output wire         out_r_TVALID,
    input  wire         out_r_TREADY
);
    reg [W-1:0] data;
    reg         valid;
    assign in_r_TREADY  = (STALL == 0) && ap_rst_n && (!valid || out_r_TREADY);
    assign out_r_TDATA  = data;
    assign out_r_TVALID = valid;
    always @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            valid <= 1'b0;
            data  <= {W{1'b0}};
        end else if (in_r_TREADY) begin
            valid <= in_r_TVALID;
            data  <= in_r_TDATA + 1'b1;
        end
    end
endmodule
