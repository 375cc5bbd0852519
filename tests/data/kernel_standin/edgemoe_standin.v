// Hand-written stand-in for a Vitis HLS top kernel (tests of edgemoe.sim.kernel_bench only).
// Same port shape as Vitis's RTL of
//   extern "C" void edgemoe_standin(const int *src, int *dst, int addend);   // m_axi bundle=gmem,
//   s_axilite bundle=control for src, dst, addend and return
// Behaviour: dst[i] = src[i] + addend for i < N, in bursts of up to 16 beats, then ap_done.
// Register map (as Vitis generates it): 0x00 ctrl (bit0 ap_start, bit1 ap_done (clear on read),
// bit2 ap_idle, bit3 ap_ready (clear on read), bit7 auto_restart), 0x04 GIE, 0x08 IER, 0x0c ISR
// (toggle on write), 0x10/0x14 src, 0x1c/0x20 dst, 0x28 addend.
// STALL=1: the kernel starts but never finishes (for the cycle-limit test).
`timescale 1ns / 1ps
module edgemoe_standin #(
    parameter N = 37,
    parameter STALL = 0
) (
    input  wire        ap_clk,
    input  wire        ap_rst_n,
    output wire        interrupt,
    // AXI4-Lite slave "control"
    input  wire        s_axi_control_AWVALID,
    output wire        s_axi_control_AWREADY,
    input  wire [5:0]  s_axi_control_AWADDR,
    input  wire        s_axi_control_WVALID,
    output wire        s_axi_control_WREADY,
    input  wire [31:0] s_axi_control_WDATA,
    input  wire [3:0]  s_axi_control_WSTRB,
    input  wire        s_axi_control_ARVALID,
    output wire        s_axi_control_ARREADY,
    input  wire [5:0]  s_axi_control_ARADDR,
    output wire        s_axi_control_RVALID,
    input  wire        s_axi_control_RREADY,
    output wire [31:0] s_axi_control_RDATA,
    output wire [1:0]  s_axi_control_RRESP,
    output wire        s_axi_control_BVALID,
    input  wire        s_axi_control_BREADY,
    output wire [1:0]  s_axi_control_BRESP,
    // AXI4 master "gmem"
    output wire        m_axi_gmem_AWVALID,
    input  wire        m_axi_gmem_AWREADY,
    output wire [63:0] m_axi_gmem_AWADDR,
    output wire [0:0]  m_axi_gmem_AWID,
    output wire [7:0]  m_axi_gmem_AWLEN,
    output wire [2:0]  m_axi_gmem_AWSIZE,
    output wire [1:0]  m_axi_gmem_AWBURST,
    output wire [1:0]  m_axi_gmem_AWLOCK,
    output wire [3:0]  m_axi_gmem_AWCACHE,
    output wire [2:0]  m_axi_gmem_AWPROT,
    output wire [3:0]  m_axi_gmem_AWQOS,
    output wire [3:0]  m_axi_gmem_AWREGION,
    output wire [0:0]  m_axi_gmem_AWUSER,
    output wire        m_axi_gmem_WVALID,
    input  wire        m_axi_gmem_WREADY,
    output wire [31:0] m_axi_gmem_WDATA,
    output wire [3:0]  m_axi_gmem_WSTRB,
    output wire        m_axi_gmem_WLAST,
    output wire [0:0]  m_axi_gmem_WID,
    output wire [0:0]  m_axi_gmem_WUSER,
    output wire        m_axi_gmem_ARVALID,
    input  wire        m_axi_gmem_ARREADY,
    output wire [63:0] m_axi_gmem_ARADDR,
    output wire [0:0]  m_axi_gmem_ARID,
    output wire [7:0]  m_axi_gmem_ARLEN,
    output wire [2:0]  m_axi_gmem_ARSIZE,
    output wire [1:0]  m_axi_gmem_ARBURST,
    output wire [1:0]  m_axi_gmem_ARLOCK,
    output wire [3:0]  m_axi_gmem_ARCACHE,
    output wire [2:0]  m_axi_gmem_ARPROT,
    output wire [3:0]  m_axi_gmem_ARQOS,
    output wire [3:0]  m_axi_gmem_ARREGION,
    output wire [0:0]  m_axi_gmem_ARUSER,
    input  wire        m_axi_gmem_RVALID,
    output wire        m_axi_gmem_RREADY,
    input  wire [31:0] m_axi_gmem_RDATA,
    input  wire        m_axi_gmem_RLAST,
    input  wire [0:0]  m_axi_gmem_RID,
    input  wire [0:0]  m_axi_gmem_RUSER,
    input  wire [1:0]  m_axi_gmem_RRESP,
    input  wire        m_axi_gmem_BVALID,
    output wire        m_axi_gmem_BREADY,
    input  wire [1:0]  m_axi_gmem_BRESP,
    input  wire [0:0]  m_axi_gmem_BID,
    input  wire [0:0]  m_axi_gmem_BUSER
);
    // ---------------- AXI4-Lite slave ----------------
    localparam WRIDLE = 2'd0, WRDATA = 2'd1, WRRESP = 2'd2;
    localparam RDIDLE = 2'd0, RDDATA = 2'd1;
    reg [1:0]  wstate, rstate;
    reg [5:0]  waddr;
    reg [31:0] rdata;
    reg        int_ap_start, int_ap_done, int_ap_ready, int_auto_restart, int_gie;
    reg [1:0]  int_ier, int_isr;
    reg [63:0] int_src, int_dst;
    reg [31:0] int_addend;
    wire       ap_idle, ap_done_pulse;

    assign s_axi_control_AWREADY = (wstate == WRIDLE);
    assign s_axi_control_WREADY  = (wstate == WRDATA);
    assign s_axi_control_BVALID  = (wstate == WRRESP);
    assign s_axi_control_BRESP   = 2'b00;
    assign s_axi_control_ARREADY = (rstate == RDIDLE);
    assign s_axi_control_RVALID  = (rstate == RDDATA);
    assign s_axi_control_RDATA   = rdata;
    assign s_axi_control_RRESP   = 2'b00;
    assign interrupt = int_gie & (|int_isr);

    wire aw_hs = s_axi_control_AWVALID & s_axi_control_AWREADY;
    wire w_hs  = s_axi_control_WVALID & s_axi_control_WREADY;
    wire ar_hs = s_axi_control_ARVALID & s_axi_control_ARREADY;
    wire [31:0] wmask = {{8{s_axi_control_WSTRB[3]}}, {8{s_axi_control_WSTRB[2]}},
                         {8{s_axi_control_WSTRB[1]}}, {8{s_axi_control_WSTRB[0]}}};
    wire [31:0] wval = s_axi_control_WDATA & wmask;
    wire        ctrl_read = ar_hs && (s_axi_control_ARADDR == 6'h00);

    always @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            wstate <= WRIDLE;
            rstate <= RDIDLE;
            waddr  <= 6'd0;
            rdata  <= 32'd0;
        end else begin
            case (wstate)
                WRIDLE: if (s_axi_control_AWVALID) begin wstate <= WRDATA; waddr <= s_axi_control_AWADDR; end
                WRDATA: if (s_axi_control_WVALID) wstate <= WRRESP;
                default: if (s_axi_control_BREADY) wstate <= WRIDLE;
            endcase
            case (rstate)
                RDIDLE: if (s_axi_control_ARVALID) begin
                    rstate <= RDDATA;
                    case (s_axi_control_ARADDR)
                        6'h00: rdata <= {24'd0, int_auto_restart, 3'd0, int_ap_ready, ap_idle, int_ap_done, int_ap_start};
                        6'h04: rdata <= {31'd0, int_gie};
                        6'h08: rdata <= {30'd0, int_ier};
                        6'h0c: rdata <= {30'd0, int_isr};
                        6'h10: rdata <= int_src[31:0];
                        6'h14: rdata <= int_src[63:32];
                        6'h1c: rdata <= int_dst[31:0];
                        6'h20: rdata <= int_dst[63:32];
                        6'h28: rdata <= int_addend;
                        default: rdata <= 32'd0;
                    endcase
                end
                default: if (s_axi_control_RREADY) rstate <= RDIDLE;
            endcase
        end
    end

    // registers
    always @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            int_ap_start <= 1'b0; int_ap_done <= 1'b0; int_ap_ready <= 1'b0; int_auto_restart <= 1'b0;
            int_gie <= 1'b0; int_ier <= 2'd0; int_isr <= 2'd0;
            int_src <= 64'd0; int_dst <= 64'd0; int_addend <= 32'd0;
        end else begin
            // ap_start: set by the host, cleared when the run ends (unless auto-restart)
            if (w_hs && waddr == 6'h00 && s_axi_control_WSTRB[0] && s_axi_control_WDATA[0])
                int_ap_start <= 1'b1;
            else if (ap_done_pulse)
                int_ap_start <= int_auto_restart;
            if (w_hs && waddr == 6'h00 && s_axi_control_WSTRB[0])
                int_auto_restart <= s_axi_control_WDATA[7];
            // ap_done / ap_ready: set at the end of a run, cleared when the host reads 0x00
            if (ap_done_pulse) begin
                int_ap_done  <= 1'b1;
                int_ap_ready <= 1'b1;
            end else if (ctrl_read) begin
                int_ap_done  <= 1'b0;
                int_ap_ready <= 1'b0;
            end
            if (w_hs && waddr == 6'h04) int_gie <= s_axi_control_WDATA[0];
            if (w_hs && waddr == 6'h08) int_ier <= s_axi_control_WDATA[1:0];
            if (w_hs && waddr == 6'h0c) int_isr <= int_isr ^ s_axi_control_WDATA[1:0];
            else if (ap_done_pulse && int_ier[0]) int_isr[0] <= 1'b1;
            if (w_hs && waddr == 6'h10) int_src[31:0]  <= (int_src[31:0]  & ~wmask) | wval;
            if (w_hs && waddr == 6'h14) int_src[63:32] <= (int_src[63:32] & ~wmask) | wval;
            if (w_hs && waddr == 6'h1c) int_dst[31:0]  <= (int_dst[31:0]  & ~wmask) | wval;
            if (w_hs && waddr == 6'h20) int_dst[63:32] <= (int_dst[63:32] & ~wmask) | wval;
            if (w_hs && waddr == 6'h28) int_addend     <= (int_addend     & ~wmask) | wval;
        end
    end

    // ---------------- datapath: read a burst, add, write it back ----------------
    localparam S_IDLE = 3'd0, S_AR = 3'd1, S_R = 3'd2, S_AW = 3'd3, S_W = 3'd4, S_B = 3'd5, S_DONE = 3'd6,
               S_STALL = 3'd7;
    reg [2:0]  state;
    reg [63:0] src, dst;
    reg [31:0] addend;
    reg [15:0] idx;           // words done
    reg [4:0]  cnt;           // beat within the burst
    reg [31:0] buffer [0:15];
    wire [15:0] left = N[15:0] - idx;
    wire [4:0]  blen = (left > 16'd16) ? 5'd16 : left[4:0];

    assign ap_idle        = (state == S_IDLE);
    assign ap_done_pulse  = (state == S_DONE);

    assign m_axi_gmem_ARVALID = (state == S_AR);
    assign m_axi_gmem_ARADDR  = src + {46'd0, idx, 2'b00};
    assign m_axi_gmem_ARLEN   = {3'd0, blen - 5'd1};
    assign m_axi_gmem_ARSIZE  = 3'd2;
    assign m_axi_gmem_ARBURST = 2'b01;
    assign m_axi_gmem_RREADY  = (state == S_R);
    assign m_axi_gmem_AWVALID = (state == S_AW);
    assign m_axi_gmem_AWADDR  = dst + {46'd0, idx, 2'b00};
    assign m_axi_gmem_AWLEN   = {3'd0, blen - 5'd1};
    assign m_axi_gmem_AWSIZE  = 3'd2;
    assign m_axi_gmem_AWBURST = 2'b01;
    assign m_axi_gmem_WVALID  = (state == S_W);
    assign m_axi_gmem_WDATA   = buffer[cnt[3:0]];
    assign m_axi_gmem_WSTRB   = 4'hf;
    assign m_axi_gmem_WLAST   = (state == S_W) && (cnt == blen - 5'd1);
    assign m_axi_gmem_BREADY  = (state == S_B);
    assign m_axi_gmem_AWID = 1'b0;  assign m_axi_gmem_ARID = 1'b0;  assign m_axi_gmem_WID = 1'b0;
    assign m_axi_gmem_AWLOCK = 2'd0;  assign m_axi_gmem_ARLOCK = 2'd0;
    assign m_axi_gmem_AWCACHE = 4'd3; assign m_axi_gmem_ARCACHE = 4'd3;
    assign m_axi_gmem_AWPROT = 3'd0;  assign m_axi_gmem_ARPROT = 3'd0;
    assign m_axi_gmem_AWQOS = 4'd0;   assign m_axi_gmem_ARQOS = 4'd0;
    assign m_axi_gmem_AWREGION = 4'd0; assign m_axi_gmem_ARREGION = 4'd0;
    assign m_axi_gmem_AWUSER = 1'b0;  assign m_axi_gmem_ARUSER = 1'b0; assign m_axi_gmem_WUSER = 1'b0;

    always @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            state <= S_IDLE; idx <= 16'd0; cnt <= 5'd0; src <= 64'd0; dst <= 64'd0; addend <= 32'd0;
        end else begin
            case (state)
                S_IDLE: if (int_ap_start) begin
                    src <= int_src; dst <= int_dst; addend <= int_addend; idx <= 16'd0;
                    state <= (STALL != 0) ? S_STALL : S_AR;
                end
                S_AR: if (m_axi_gmem_ARREADY) begin state <= S_R; cnt <= 5'd0; end
                S_R: if (m_axi_gmem_RVALID) begin
                    buffer[cnt[3:0]] <= m_axi_gmem_RDATA + addend;
                    cnt <= cnt + 5'd1;
                    if (m_axi_gmem_RLAST) state <= S_AW;
                end
                S_AW: if (m_axi_gmem_AWREADY) begin state <= S_W; cnt <= 5'd0; end
                S_W: if (m_axi_gmem_WREADY) begin
                    cnt <= cnt + 5'd1;
                    if (cnt == blen - 5'd1) state <= S_B;
                end
                S_B: if (m_axi_gmem_BVALID) begin
                    idx <= idx + {11'd0, blen};
                    state <= (idx + {11'd0, blen} >= N[15:0]) ? S_DONE : S_AR;
                end
                S_DONE: state <= S_IDLE;
                default: state <= S_STALL;
            endcase
        end
    end
endmodule
