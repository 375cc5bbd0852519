// edgemoe_probe.cpp -- the recorder of the instrumented C simulation (`edgemoe hls-check`).
//
// Not kernel code: linked only into the probe build (-DEDGEMOE_PROBE), so the STL is fine here.
// It implements the hooks of edgemoe_probe.h and keeps, per pipelined-loop iteration:
//   - the accesses of every bank of every registered buffer (block RAM: at most 2; UltraRAM ram_2p:
//     at most 2 of which at most 1 write),
//   - the reads of every copy of every registered ROM (at most 2),
//   - per m_axi port, its accesses, so that each loop invocation can be judged as one burst: exactly
//     one access per iteration at consecutive increasing word addresses.
// Extra entry points (not in the header; called through ctypes by edgemoe.codegen.probe):
//   long em_probe_report_json(char *buf, long cap)  the report; returns its length (retry if >= cap)
//   void em_probe_reset(void)                      forget the statistics, keep the registrations
//   void em_probe_set_word_bytes(long bytes)       size of one m_axi word (default: sizeof
//                                                  ap_uint<EM_PROBE_AXI_BITS> when that is defined)
// Speed: the kernel makes ~1e8 probed accesses on a full model, so every hook is a few array
// operations: per-slot iteration stamps instead of clearing counters, a direct-mapped pointer cache
// in front of the range lookups, and names resolved only when the report is written.
#ifndef EDGEMOE_PROBE
#define EDGEMOE_PROBE 1
#endif
#include "edgemoe_probe.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#ifdef EM_PROBE_AXI_BITS
#include <ap_int.h>
static long g_word_bytes = long(sizeof(ap_uint<EM_PROBE_AXI_BITS>));
#else
static long g_word_bytes = 0;   // unknown: the first address step seen is taken as one word
#endif

namespace {

typedef unsigned long long stamp_t;

struct Region {           // a registered buffer, ROM or port
    std::string name, bundle;
    const char *base = nullptr;
    long bytes = 0;       // whole range (ROM: all copies)
    int kind = 0;         // 0 buffer, 1 ROM, 2 port
    int banks = 1;        // buffer: banks; ROM: copies
    int uram = 0;
    long copy_bytes = 0;  // ROM: bytes per copy
    int first = 0;        // first slot (buffer banks, ROM copies)
    bool live = false;    // registered range still valid
    long long accesses = 0;   // in pipelined iterations (buffers, ROMs)
};

struct Span {
    const char *lo, *hi;
    int id;
};

// statistics of one m_axi port
struct PortStat {
    long long accesses = 0;
    stamp_t iter_stamp = 0;   // last iteration it was accessed in
    int iter_count = 0;       // accesses in that iteration
    stamp_t inv_stamp = 0;    // last invocation it was accessed in
    long inv_iters = 0;       // iterations of that invocation with an access
    long last_word = 0;
    bool have_last = false;
    std::vector<int> loops;   // loop ids that accessed it
    int last_loop = -2;       // loops' last entry (skips the search)
};

struct Conflict {         // worst case of one (loop, buffer) or (loop, ROM)
    int bank = 0, max_acc = 0, max_wr = 0;
    long long iterations = 0;
    stamp_t last_iter = 0;
};

struct LoopStat {
    std::string label;
    long long iterations = 0, invocations = 0;
};

struct State {
    std::vector<Region> regions;
    std::vector<Span> spans;              // live ranges, sorted by lo
    std::unordered_map<std::string, int> by_name;
    // slots: buffer banks and ROM copies
    std::vector<stamp_t> slot_stamp;
    std::vector<int> slot_acc, slot_wr, slot_owner;
    std::vector<int> touched;             // slots used in the current iteration
    std::vector<int> port_touched;        // ports used in the current invocation
    std::vector<PortStat> ports;          // indexed by region id (only kind 2 used)
    // loops
    std::vector<LoopStat> loops;
    std::unordered_map<std::string, int> loop_by_label;
    std::unordered_map<const char *, int> loop_by_ptr;
    int depth = 0, cur_loop = -1;
    bool inv_open = false;
    long last_iv = 0;
    long long inv_iters = 0;
    stamp_t iter = 0, inv = 0;
    std::map<std::pair<int, int>, Conflict> bank_conf, rom_conf;   // (loop, region)
    std::map<std::pair<int, std::pair<int, int>>, long long> problems;   // (region, (loop, kind))
    long long unregistered[3] = {0, 0, 0};
    long long bad_bank = 0;
    std::vector<std::string> errors;
    // direct-mapped cache: pointer -> region id (exact pointer) for EM_MEM
    const void *cache_ptr[256] = {};
    int cache_id[256] = {};
};

State &S() {
    static State s;
    return s;
}

enum { K_CONDITIONAL = 0, K_MULTIPLE = 1, K_NONCONTIG = 2, K_OUTSIDE = 3 };
const char *const KIND_NAMES[] = {"conditional", "multiple", "non-contiguous", "outside-loop"};

void note_error(const std::string &e) {
    State &s = S();
    if (s.errors.size() < 20) s.errors.push_back(e);
}

void rebuild_spans() {
    State &s = S();
    s.spans.clear();
    for (size_t i = 0; i < s.regions.size(); i++) {
        const Region &r = s.regions[i];
        if (r.live) s.spans.push_back(Span{r.base, r.base + (r.bytes > 0 ? r.bytes : 1), int(i)});
    }
    std::sort(s.spans.begin(), s.spans.end(), [](const Span &a, const Span &b) { return a.lo < b.lo; });
    std::memset(s.cache_ptr, 0, sizeof(s.cache_ptr));
}

// a new registration: same name -> same id (a buffer re-allocated between runs keeps its statistics);
// any other live region overlapping the new range is dropped (its memory was freed and reused)
int add_region(const char *name, int kind, const void *base, long bytes) {
    State &s = S();
    std::string key = std::to_string(kind) + ":" + (name ? name : "?");
    const char *lo = static_cast<const char *>(base);
    const char *hi = lo + (bytes > 0 ? bytes : 1);
    for (Region &r : s.regions) {
        if (r.live && r.base < hi && lo < r.base + (r.bytes > 0 ? r.bytes : 1)) r.live = false;
    }
    int id;
    auto it = s.by_name.find(key);
    if (it == s.by_name.end()) {
        id = int(s.regions.size());
        s.regions.push_back(Region());
        s.ports.push_back(PortStat());
        s.by_name[key] = id;
    } else {
        id = it->second;
    }
    Region &r = s.regions[id];
    r.name = name ? name : "?";
    r.kind = kind;
    r.base = lo;
    r.bytes = bytes;
    r.live = true;
    return id;
}

void alloc_slots(Region &r, int id, int n) {
    State &s = S();
    if (n < 1) n = 1;
    if (r.banks == n && r.first + n <= int(s.slot_owner.size()) && s.slot_owner[r.first] == id) return;
    r.banks = n;
    r.first = int(s.slot_owner.size());
    s.slot_stamp.resize(r.first + n, 0);
    s.slot_acc.resize(r.first + n, 0);
    s.slot_wr.resize(r.first + n, 0);
    s.slot_owner.resize(r.first + n, id);
}

int find_span(const void *p) {
    State &s = S();
    const char *c = static_cast<const char *>(p);
    size_t lo = 0, hi = s.spans.size();
    while (lo < hi) {   // last span with lo <= c
        size_t mid = (lo + hi) / 2;
        if (s.spans[mid].lo <= c) lo = mid + 1; else hi = mid;
    }
    if (lo == 0) return -1;
    const Span &sp = s.spans[lo - 1];
    return c < sp.hi ? sp.id : -1;
}

int loop_id(const char *label) {
    State &s = S();
    auto it = s.loop_by_ptr.find(label);
    if (it != s.loop_by_ptr.end()) return it->second;
    std::string key = label ? label : "?";
    auto jt = s.loop_by_label.find(key);
    int id;
    if (jt == s.loop_by_label.end()) {
        id = int(s.loops.size());
        s.loops.push_back(LoopStat());
        s.loops.back().label = key;
        s.loop_by_label[key] = id;
    } else {
        id = jt->second;
    }
    s.loop_by_ptr[label] = id;
    return id;
}

void add_problem(int port, int loop, int kind, long long n) {
    if (n > 0) S().problems[std::make_pair(port, std::make_pair(loop, kind))] += n;
}

// end of an invocation: ports accessed in only some of its iterations were accessed conditionally
void finish_invocation() {
    State &s = S();
    if (!s.inv_open) return;
    for (int p : s.port_touched) {
        PortStat &ps = s.ports[p];
        if (ps.inv_iters < s.inv_iters) add_problem(p, s.cur_loop, K_CONDITIONAL, s.inv_iters - ps.inv_iters);
    }
    s.port_touched.clear();
    s.inv_open = false;
}

void record_conflict(std::map<std::pair<int, int>, Conflict> &m, int loop, int region, int bank, int acc, int wr) {
    Conflict &c = m[std::make_pair(loop, region)];
    if (c.last_iter != S().iter) {
        c.last_iter = S().iter;
        c.iterations++;
    }
    if (acc > c.max_acc || (acc == c.max_acc && wr > c.max_wr)) {
        c.max_acc = acc;
        c.bank = bank;
    }
    if (wr > c.max_wr) c.max_wr = wr;
}

// end of an iteration: the ports of every bank and ROM copy it used
void finish_iteration() {
    State &s = S();
    for (int slot : s.touched) {
        const int id = s.slot_owner[slot];
        const Region &r = s.regions[id];
        const int acc = s.slot_acc[slot], wr = s.slot_wr[slot];
        const bool over = r.kind == 1 ? acc > 2 : (acc > 2 || (r.uram && wr > 1));
        if (over) record_conflict(r.kind == 1 ? s.rom_conf : s.bank_conf, s.cur_loop, id, slot - r.first, acc, wr);
    }
    s.touched.clear();
}

inline void count_slot(int slot, int is_write) {
    State &s = S();
    if (s.slot_stamp[slot] != s.iter) {
        s.slot_stamp[slot] = s.iter;
        s.slot_acc[slot] = 0;
        s.slot_wr[slot] = 0;
        s.touched.push_back(slot);
    }
    s.slot_acc[slot]++;
    s.slot_wr[slot] += is_write != 0;
}

void json_str(std::string &o, const std::string &v) {
    o += '"';
    for (char c : v) {
        if (c == '"' || c == '\\') {
            o += '\\';
            o += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char b[8];
            std::snprintf(b, sizeof(b), "\\u%04x", c);
            o += b;
        } else {
            o += c;
        }
    }
    o += '"';
}

std::string num(long long v) { return std::to_string(v); }

std::string loop_name(int id) {
    return id < 0 ? std::string() : S().loops[id].label;
}

std::string report() {
    State &s = S();
    finish_invocation();
    std::string o = "{\"loops\": {";
    for (size_t i = 0; i < s.loops.size(); i++) {
        if (i) o += ", ";
        json_str(o, s.loops[i].label);
        o += ": {\"iterations\": " + num(s.loops[i].iterations) + ", \"invocations\": " +
             num(s.loops[i].invocations) + "}";
    }
    o += "}, \"bank_conflicts\": [";
    bool first = true;
    for (const auto &kv : s.bank_conf) {
        const Region &r = s.regions[kv.first.second];
        o += first ? "{" : ", {";
        first = false;
        o += "\"loop\": ";
        json_str(o, loop_name(kv.first.first));
        o += ", \"buffer\": ";
        json_str(o, r.name);
        o += ", \"bank\": " + num(kv.second.bank) + ", \"max_accesses\": " + num(kv.second.max_acc) +
             ", \"max_writes\": " + num(kv.second.max_wr) + ", \"ports\": 2, \"uram\": " +
             std::string(r.uram ? "true" : "false") + ", \"iterations\": " + num(kv.second.iterations) + "}";
    }
    o += "], \"rom_oversubscribed\": [";
    first = true;
    for (const auto &kv : s.rom_conf) {
        o += first ? "{" : ", {";
        first = false;
        o += "\"loop\": ";
        json_str(o, loop_name(kv.first.first));
        o += ", \"rom\": ";
        json_str(o, s.regions[kv.first.second].name);
        o += ", \"copy\": " + num(kv.second.bank) + ", \"max_reads\": " + num(kv.second.max_acc) +
             ", \"iterations\": " + num(kv.second.iterations) + "}";
    }
    o += "], \"bursts\": {";
    first = true;
    for (size_t id = 0; id < s.regions.size(); id++) {
        const Region &r = s.regions[id];
        if (r.kind != 2) continue;
        const PortStat &ps = s.ports[id];
        std::string probs;
        for (const auto &kv : s.problems) {
            if (kv.first.first != int(id)) continue;
            if (!probs.empty()) probs += ", ";
            probs += "{\"loop\": ";
            if (kv.first.second.first < 0) probs += "null"; else json_str(probs, loop_name(kv.first.second.first));
            probs += ", \"kind\": \"" + std::string(KIND_NAMES[kv.first.second.second]) + "\", \"count\": " +
                     num(kv.second) + "}";
        }
        o += first ? "" : ", ";
        first = false;
        json_str(o, r.name);
        o += ": {\"bundle\": ";
        json_str(o, r.bundle);
        o += ", \"loops\": [";
        for (size_t k = 0; k < ps.loops.size(); k++) {
            if (k) o += ", ";
            json_str(o, loop_name(ps.loops[k]));
        }
        o += "], \"contiguous\": " + std::string(probs.empty() ? "true" : "false") + ", \"accesses\": " +
             num(ps.accesses) + ", \"problems\": [" + probs + "]}";
    }
    o += "}, \"buffers\": {";
    first = true;
    for (const Region &r : s.regions) {
        if (r.kind == 2) continue;
        o += first ? "" : ", ";
        first = false;
        json_str(o, r.name);
        o += r.kind == 0 ? ": {\"kind\": \"buffer\", \"banks\": " : ": {\"kind\": \"rom\", \"copies\": ";
        o += num(r.banks) + ", \"uram\": " + std::string(r.uram ? "true" : "false") + ", \"accesses\": " +
             num(r.accesses) + "}";
    }
    o += "}, \"word_bytes\": " + num(g_word_bytes) + ", \"unregistered\": {\"mem\": " + num(s.unregistered[0]) +
         ", \"rom\": " + num(s.unregistered[1]) + ", \"maxi\": " + num(s.unregistered[2]) + "}, \"bad_banks\": " +
         num(s.bad_bank) + ", \"errors\": [";
    for (size_t i = 0; i < s.errors.size(); i++) {
        if (i) o += ", ";
        json_str(o, s.errors[i]);
    }
    o += "]}";
    return o;
}

}  // namespace

extern "C" {

void em_probe_iter_begin(const char *loop, long iv) {
    State &s = S();
    if (s.depth++ > 0) return;   // a nested pipelined loop or function: part of this iteration
    const int id = loop_id(loop);
    if (!s.inv_open || id != s.cur_loop || iv <= s.last_iv) {
        finish_invocation();
        s.cur_loop = id;
        s.inv_open = true;
        s.inv++;
        s.inv_iters = 0;
        s.loops[id].invocations++;
    }
    s.last_iv = iv;
    s.iter++;
    s.inv_iters++;
    s.loops[id].iterations++;
}

void em_probe_iter_end(void) {
    State &s = S();
    if (s.depth == 0) return;
    if (--s.depth == 0) finish_iteration();
}

void em_probe_mem(const void *buffer, int bank, int is_write) {
    State &s = S();
    if (s.depth == 0) return;   // outside pipelined loops the ports are not contended
    const unsigned h = unsigned((reinterpret_cast<uintptr_t>(buffer) >> 4) & 255u);
    int id;
    if (s.cache_ptr[h] == buffer) {
        id = s.cache_id[h];
    } else {
        id = find_span(buffer);
        if (id < 0 || s.regions[id].kind != 0) {
            s.unregistered[0]++;
            return;
        }
        s.cache_ptr[h] = buffer;
        s.cache_id[h] = id;
    }
    Region &r = s.regions[id];
    r.accesses++;
    if (bank < 0 || bank >= r.banks) {
        if (s.bad_bank++ == 0) note_error("EM_MEM bank " + std::to_string(bank) + " of " + r.name + " (" +
                                          std::to_string(r.banks) + " banks)");
        return;
    }
    count_slot(r.first + bank, is_write);
}

void em_probe_rom(const void *addr) {
    State &s = S();
    if (s.depth == 0) return;
    const int id = find_span(addr);
    if (id < 0 || s.regions[id].kind != 1) {
        s.unregistered[1]++;
        return;
    }
    Region &r = s.regions[id];
    r.accesses++;
    long copy = r.copy_bytes > 0 ? long((static_cast<const char *>(addr) - r.base) / r.copy_bytes) : 0;
    if (copy >= r.banks) copy = r.banks - 1;
    count_slot(r.first + int(copy), 0);
}

void em_probe_maxi(const void *addr, int is_write) {
    (void)is_write;   // reads and writes of one port in one loop both break its burst
    State &s = S();
    const int id = find_span(addr);
    if (id < 0 || s.regions[id].kind != 2) {
        s.unregistered[2]++;
        return;
    }
    PortStat &ps = s.ports[id];
    ps.accesses++;
    if (s.depth == 0) {
        add_problem(id, -1, K_OUTSIDE, 1);
        return;
    }
    const int loop = s.cur_loop;
    if (loop != ps.last_loop) {
        ps.last_loop = loop;
        if (std::find(ps.loops.begin(), ps.loops.end(), loop) == ps.loops.end()) ps.loops.push_back(loop);
    }
    if (ps.inv_stamp != s.inv) {   // first access of this invocation
        ps.inv_stamp = s.inv;
        ps.inv_iters = 0;
        ps.have_last = false;
        s.port_touched.push_back(id);
    }
    if (ps.iter_stamp != s.iter) {
        ps.iter_stamp = s.iter;
        ps.iter_count = 0;
        ps.inv_iters++;
    }
    if (++ps.iter_count == 2) add_problem(id, loop, K_MULTIPLE, 1);
    const long off = long(static_cast<const char *>(addr) - s.regions[id].base);
    if (g_word_bytes <= 0 && ps.have_last && off != ps.last_word) {
        const long step = off > ps.last_word ? off - ps.last_word : ps.last_word - off;
        g_word_bytes = step;   // no word size given: the first step seen is one word
        ps.last_word /= g_word_bytes;
    }
    const long word = g_word_bytes > 0 ? off / g_word_bytes : off;
    const bool aligned = g_word_bytes <= 0 || off % g_word_bytes == 0;
    if (ps.have_last && (word != ps.last_word + 1 || !aligned)) add_problem(id, loop, K_NONCONTIG, 1);
    ps.last_word = word;
    ps.have_last = true;
}

void em_probe_buffer(const void *base, long bytes, const char *name, int banks, int uram) {
    const int id = add_region(name, 0, base, bytes);
    Region &r = S().regions[id];
    r.uram = uram;
    alloc_slots(r, id, banks);
    rebuild_spans();
}

void em_probe_rom_table(const void *base, long bytes_per_copy, int copies, const char *name) {
    const int n = copies > 0 ? copies : 1;
    const int id = add_region(name, 1, base, bytes_per_copy * n);
    Region &r = S().regions[id];
    r.copy_bytes = bytes_per_copy;
    alloc_slots(r, id, n);
    rebuild_spans();
}

void em_probe_port(const void *base, long words, const char *name, const char *bundle) {
    // the byte size is only known with the word size; without it, a port spans up to the next region
    const long wb = g_word_bytes > 0 ? g_word_bytes : 1;
    const int id = add_region(name, 2, base, words * wb);
    S().regions[id].bundle = bundle ? bundle : "";
    rebuild_spans();
}

void em_probe_set_word_bytes(long bytes) { g_word_bytes = bytes; }

void em_probe_reset(void) {
    State &s = S();
    for (PortStat &p : s.ports) p = PortStat();
    for (Region &r : s.regions) r.accesses = 0;
    s.loops.clear();
    s.loop_by_label.clear();
    s.loop_by_ptr.clear();
    s.touched.clear();
    s.port_touched.clear();
    s.depth = 0;
    s.cur_loop = -1;
    s.inv_open = false;
    s.inv_iters = 0;
    s.iter++;   // stale stamps never match again
    s.inv++;
    s.bank_conf.clear();
    s.rom_conf.clear();
    s.problems.clear();
    s.unregistered[0] = s.unregistered[1] = s.unregistered[2] = 0;
    s.bad_bank = 0;
    s.errors.clear();
}

long em_probe_report_json(char *buf, long cap) {
    const std::string r = report();
    if (buf && cap > 0) {
        const long n = long(r.size()) < cap - 1 ? long(r.size()) : cap - 1;
        std::memcpy(buf, r.data(), size_t(n));
        buf[n] = 0;
    }
    return long(r.size());
}

}  // extern "C"
