// ==============================================================
// Hand-written stand-in, in the format of a Vitis HLS driver header (x<top>_hw.h)
// ==============================================================
// control
// 0x00 : Control signals
//        bit 0  - ap_start (Read/Write/COH)
//        bit 1  - ap_done (Read/COR)
//        bit 2  - ap_idle (Read)
//        bit 3  - ap_ready (Read/COR)
//        bit 7  - auto_restart (Read/Write)
//        others - reserved
// 0x04 : Global Interrupt Enable Register
// 0x08 : IP Interrupt Enable Register (Read/Write)
// 0x0c : IP Interrupt Status Register (Read/TOW)
// 0x10 : Data signal of src
//        bit 31~0 - src[31:0] (Read/Write)
// 0x14 : Data signal of src
//        bit 31~0 - src[63:32] (Read/Write)
// 0x18 : reserved
// 0x1c : Data signal of dst
//        bit 31~0 - dst[31:0] (Read/Write)
// 0x20 : Data signal of dst
//        bit 31~0 - dst[63:32] (Read/Write)
// 0x24 : reserved
// 0x28 : Data signal of addend
//        bit 31~0 - addend[31:0] (Read/Write)
// 0x2c : reserved
// (SC = Self Clear, COR = Clear on Read, TOW = Toggle on Write, COH = Clear on Handshake)

#define XEDGEMOE_STANDIN_CONTROL_ADDR_AP_CTRL     0x00
#define XEDGEMOE_STANDIN_CONTROL_ADDR_GIE         0x04
#define XEDGEMOE_STANDIN_CONTROL_ADDR_IER         0x08
#define XEDGEMOE_STANDIN_CONTROL_ADDR_ISR         0x0c
#define XEDGEMOE_STANDIN_CONTROL_ADDR_SRC_DATA    0x10
#define XEDGEMOE_STANDIN_CONTROL_BITS_SRC_DATA    64
#define XEDGEMOE_STANDIN_CONTROL_ADDR_DST_DATA    0x1c
#define XEDGEMOE_STANDIN_CONTROL_BITS_DST_DATA    64
#define XEDGEMOE_STANDIN_CONTROL_ADDR_ADDEND_DATA 0x28
#define XEDGEMOE_STANDIN_CONTROL_BITS_ADDEND_DATA 32
