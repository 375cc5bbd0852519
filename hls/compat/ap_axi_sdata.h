// ap_axi_sdata.h -- minimal stand-in for Vitis' AXI-Stream side-channel structs (C simulation only,
// used when the hls4ml ap_types are the header source; Vitis ships the real one).
//   ap_axis<W, U, TI, TD[, EnableSignals, StrictEnablement]>   signed data
//   ap_axiu<W, U, TI, TD[, EnableSignals, StrictEnablement]>   unsigned data
//   hls::axis<T, U, TI, TD[, EnableSignals, StrictEnablement]> data of any type T (Vitis 2023.2+)
//   AXIS_ENABLE_DATA / _DEST / _ID / _KEEP / _LAST / _STRB / _USER / _ALL: the EnableSignals bits.
// In Vitis the enable bits choose which side channels become ports (e.g. AXIS_ENABLE_LAST: TDATA,
// TVALID, TREADY and TLAST only); here every member exists whatever the bits, so C simulation
// code that touches only data and last behaves the same with either header.  Every member starts
// at zero (no uninitialised side channels in csim).
#ifndef EDGEMOE_COMPAT_AP_AXI_SDATA_H
#define EDGEMOE_COMPAT_AP_AXI_SDATA_H

#include <ap_int.h>

#ifndef AXIS_ENABLE_DATA
#define AXIS_ENABLE_DATA 0x01
#define AXIS_ENABLE_DEST 0x02
#define AXIS_ENABLE_ID 0x04
#define AXIS_ENABLE_KEEP 0x08
#define AXIS_ENABLE_LAST 0x10
#define AXIS_ENABLE_STRB 0x20
#define AXIS_ENABLE_USER 0x40
#define AXIS_ENABLE_ALL 0x7F
#endif

namespace hls {

// bytes of a data type (TKEEP / TSTRB width): the ap_(u)int width rounded up, else sizeof
template <typename T> struct axis_bytes { static const int value = int(sizeof(T)); };
template <int W> struct axis_bytes<ap_uint<W> > { static const int value = (W + 7) / 8; };
template <int W> struct axis_bytes<ap_int<W> > { static const int value = (W + 7) / 8; };

template <typename T, int WUser = 0, int WId = 0, int WDest = 0,
          unsigned char EnableSignals = (AXIS_ENABLE_KEEP | AXIS_ENABLE_LAST | AXIS_ENABLE_STRB),
          bool StrictEnablement = false>
struct axis {
    T data;
    ap_uint<axis_bytes<T>::value> keep;
    ap_uint<axis_bytes<T>::value> strb;
    ap_uint<(WUser > 0 ? WUser : 1)> user;
    ap_uint<1> last;
    ap_uint<(WId > 0 ? WId : 1)> id;
    ap_uint<(WDest > 0 ? WDest : 1)> dest;

    axis() : data(0), keep(0), strb(0), user(0), last(0), id(0), dest(0) {}

    T get_data() const { return data; }
    void set_data(const T &d) { data = d; }
    ap_uint<1> get_last() const { return last; }
    void set_last(const ap_uint<1> &l) { last = l; }
    ap_uint<axis_bytes<T>::value> get_keep() const { return keep; }
    void set_keep(const ap_uint<axis_bytes<T>::value> &k) { keep = k; }
    ap_uint<axis_bytes<T>::value> get_strb() const { return strb; }
    void set_strb(const ap_uint<axis_bytes<T>::value> &s) { strb = s; }
};

}  // namespace hls

template <int D, int U, int TI, int TD,
          unsigned char EnableSignals = (AXIS_ENABLE_KEEP | AXIS_ENABLE_LAST | AXIS_ENABLE_STRB),
          bool StrictEnablement = false>
struct ap_axis : hls::axis<ap_int<D>, U, TI, TD, EnableSignals, StrictEnablement> {};

template <int D, int U, int TI, int TD,
          unsigned char EnableSignals = (AXIS_ENABLE_KEEP | AXIS_ENABLE_LAST | AXIS_ENABLE_STRB),
          bool StrictEnablement = false>
struct ap_axiu : hls::axis<ap_uint<D>, U, TI, TD, EnableSignals, StrictEnablement> {};

#endif  // EDGEMOE_COMPAT_AP_AXI_SDATA_H
