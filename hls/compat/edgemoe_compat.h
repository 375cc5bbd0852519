// edgemoe_compat.h -- what the open ap_types of the hls4ml wheel lack, for C simulation with g++.
// Used only when $XILINX_HLS is not set (the Vitis headers have all of it).  Gaps covered:
//   * ap_axi_sdata.h (ap_axis / ap_axiu side-channel structs): a minimal one sits beside this file;
//   * hls::stream<T, DEPTH>: the open hls_stream.h takes one template argument only; use
//     hls_stream_d<T, STREAM_DEPTH>::type, which is hls::stream<T> here and in Vitis alike;
//   * tanh / erf in hls_math.h: hls_compat::tanh / hls_compat::erf (double precision, csim only).
// The kernel itself needs none of these (no streams, GELU and exp come from tables); the C-sim
// harness includes this header so that extensions can rely on it.
#ifndef EDGEMOE_COMPAT_H
#define EDGEMOE_COMPAT_H

#include <cmath>

#include <hls_stream.h>

template <class T, int STREAM_DEPTH>
struct hls_stream_d {
    typedef hls::stream<T> type;   // the depth is a synthesis directive (#pragma HLS STREAM depth=)
};

#ifndef __SYNTHESIS__
namespace hls_compat {
inline double tanh(double x) { return std::tanh(x); }
inline double erf(double x) { return std::erf(x); }
}  // namespace hls_compat
#endif

#endif  // EDGEMOE_COMPAT_H
