// edgemoe_probe.h -- hooks of the instrumented C simulation that `edgemoe hls-check` runs.
//
// C simulation runs the kernel as a sequential program; it cannot show how Vitis maps it onto memory
// ports and AXI bursts.  Built with -DEDGEMOE_PROBE (the same sources), the kernel reports every
// access that decides those things to a recorder (hls/probe/edgemoe_probe.cpp, not kernel code):
//   EM_ITER(label, iv)      first statement of every pipelined loop body: one iteration of the loop
//                           labelled `label` (the C label of the loop, a string literal) with induction
//                           variable value iv.  A new invocation of the loop starts when the label
//                           changes or iv does not increase.  Nested EM_ITERs (a pipelined function
//                           called from a pipelined loop) belong to the enclosing iteration.
//   EM_MEM(buf, bank, w)    an access to physical bank `bank` of the registered on-chip buffer whose
//                           first element is at `buf` (w: 1 write, 0 read)
//   EM_ROM(addr)            a read of the ROM entry at `addr` (a registered ROM; copy from the address)
//   EM_MAXI(addr, w)        an access to the AXI word at `addr` of a registered m_axi port
// and the registrations, done once before the kernel runs:
//   em_probe_buffer(base, bytes, name, banks, uram)      banked on-chip buffer (uram: 1 = ram_2p UltraRAM)
//   em_probe_rom_table(base, bytes_per_copy, copies, name)
//   em_probe_port(base, words, name, bundle)             an m_axi argument and its bundle
// Per iteration the recorder counts the accesses of each bank (block RAM: 2 ports; UltraRAM ram_2p:
// 2 accesses, at most one write), the reads of each ROM copy (2 ports) and, per m_axi port, whether
// the loop's accesses form one burst (exactly one access per iteration, consecutive addresses).
// Without EDGEMOE_PROBE every hook is empty: the kernel Vitis sees is unchanged.
#ifndef EDGEMOE_PROBE_H
#define EDGEMOE_PROBE_H

#ifdef EDGEMOE_PROBE
extern "C" {
void em_probe_iter_begin(const char *loop, long iv);
void em_probe_iter_end(void);
void em_probe_mem(const void *buffer, int bank, int is_write);
void em_probe_rom(const void *addr);
void em_probe_maxi(const void *addr, int is_write);
void em_probe_buffer(const void *base, long bytes, const char *name, int banks, int uram);
void em_probe_rom_table(const void *base, long bytes_per_copy, int copies, const char *name);
void em_probe_port(const void *base, long words, const char *name, const char *bundle);
}

struct em_iter_scope {
    em_iter_scope(const char *loop, long iv) { em_probe_iter_begin(loop, iv); }
    ~em_iter_scope() { em_probe_iter_end(); }
};

#define EM_ITER(label, iv) em_iter_scope em_iter_scope_obj_((label), (long)(iv))
#define EM_MEM(buf, bank, w) em_probe_mem((const void *)(buf), (bank), (w))
#define EM_ROM(addr) em_probe_rom((const void *)(addr))
#define EM_MAXI(addr, w) em_probe_maxi((const void *)(addr), (w))
#else
#define EM_ITER(label, iv)
#define EM_MEM(buf, bank, w)
#define EM_ROM(addr)
#define EM_MAXI(addr, w)
#endif

#endif  // EDGEMOE_PROBE_H
