// pl_bench -- Google Benchmark over portalock's C API, beside the raw
// syscalls it wraps (the physical limit), in one binary.
//
//   pl_bench [--pl_dir=DIR] [benchmark flags, e.g. --benchmark_min_time=0.1
//            --benchmark_format=json]
//
// Names follow BM_<Backend>_<Op>:
//   BM_{Flock,Lockf,Ofd}_LockUnlock   pl_lock_fd + pl_unlock_fd, open fd
//   BM_{Flock,Lockf,Ofd}_Cycle        pl_lock_acquire + pl_lock_release on a
//                                     Lock (open + lock + unlock + close)
//   BM_{Flock,Lockf,Ofd}_Semaphore    pl_semaphore_acquire + release, 4 slots
//   BM_{Flock,Lockf,Ofd}_RLockNest    nested acquire + release of a held RLock
//   BM_Any_Probe                      pl_probe of the directory
//   BM_Raw{Flock,Lockf,Ofd}_LockUnlock  lock + unlock syscalls, open fd
//   BM_Raw{Flock,Lockf,Ofd}_Cycle       open + lock + unlock + close
// UseRealTime everywhere: the work is in system calls.  Debian's
// libbenchmark 1.7.1 prints "Library was built as DEBUG": that is the
// library's own build type (its timing loop), not ours.
#include <benchmark/benchmark.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

extern "C" {
#include "benchkit.h"
}

namespace {

std::string g_dir;
int g_errors = 0; // benchmarks that stopped with an error: exit status 1

void Fail(benchmark::State &state, const char *msg) {
    g_errors++;
    state.SkipWithError(msg);
}

// RAII for the opaque handles; only the C calls in the loop are timed.
struct LockHandle {
    pl_lock_t *lock = nullptr;
    LockHandle() = default;
    LockHandle(const LockHandle &) = delete;
    LockHandle &operator=(const LockHandle &) = delete;
    ~LockHandle() { pl_lock_close(lock); }
};

struct SemHandle {
    pl_semaphore_t *sem = nullptr;
    SemHandle() = default;
    SemHandle(const SemHandle &) = delete;
    SemHandle &operator=(const SemHandle &) = delete;
    ~SemHandle() {
        if (sem == nullptr)
            return;
        const char *p;
        for (unsigned i = 0; (p = pl_semaphore_slot_path(sem, i)) != nullptr;
             i++)
            unlink(p);
        pl_semaphore_close(sem);
    }
};

struct Fd {
    int fd = -1;
    explicit Fd(const std::string &path) : fd(bk_raw_open(path.c_str())) {}
    Fd(const Fd &) = delete;
    Fd &operator=(const Fd &) = delete;
    ~Fd() {
        if (fd >= 0)
            close(fd);
    }
};

std::string LockPath(const char *name) {
    return g_dir + "/" + name + ".lock";
}

pl_lock_options_t Options(pl_backend_t b) {
    pl_lock_options_t o;
    pl_lock_options_init(&o);
    o.backend = b;
    return o;
}

void BM_LockUnlock(benchmark::State &state, pl_backend_t b) {
    Fd f(LockPath("lockunlock"));
    if (f.fd < 0) {
        Fail(state, std::strerror(errno));
        return;
    }
    pl_error_t e;
    for (auto _ : state) {
        int rc = pl_lock_fd(f.fd, PL_EXCLUSIVE | PL_NON_BLOCKING, b, &e);
        if (rc == PL_OK)
            rc = pl_unlock_fd(f.fd, b, &e);
        if (rc != PL_OK) {
            Fail(state, e.msg);
            break;
        }
    }
    state.SetItemsProcessed(state.iterations());
}

void BM_Cycle(benchmark::State &state, pl_backend_t b) {
    LockHandle h;
    pl_lock_options_t o = Options(b);
    int rc = pl_lock_open(&h.lock, LockPath("cycle").c_str(), &o);
    if (rc != PL_OK) {
        Fail(state, pl_strerror(rc));
        return;
    }
    for (auto _ : state) {
        rc = pl_lock_acquire(h.lock);
        if (rc == PL_OK)
            rc = pl_lock_release(h.lock);
        if (rc != PL_OK) {
            Fail(state, pl_lock_errmsg(h.lock));
            break;
        }
    }
    state.SetItemsProcessed(state.iterations());
}

void BM_Semaphore(benchmark::State &state, pl_backend_t b) {
    SemHandle h;
    pl_lock_options_t o = Options(b);
    std::string name = std::string("gbsem_") + pl_backend_name(b);
    int rc = pl_semaphore_open(&h.sem, 4, name.c_str(), g_dir.c_str(), &o);
    if (rc != PL_OK) {
        Fail(state, pl_strerror(rc));
        return;
    }
    for (auto _ : state) {
        rc = pl_semaphore_acquire(h.sem);
        if (rc == PL_OK)
            rc = pl_semaphore_release(h.sem);
        if (rc != PL_OK) {
            Fail(state, pl_semaphore_errmsg(h.sem));
            break;
        }
    }
    state.SetItemsProcessed(state.iterations());
}

void BM_RLockNest(benchmark::State &state, pl_backend_t b) {
    LockHandle h;
    pl_lock_options_t o = Options(b);
    int rc = pl_rlock_open(&h.lock, LockPath("rlock").c_str(), &o);
    if (rc == PL_OK)
        rc = pl_lock_acquire(h.lock); // depth 1, held across the loop
    if (rc != PL_OK) {
        Fail(state, h.lock ? pl_lock_errmsg(h.lock) : pl_strerror(rc));
        return;
    }
    for (auto _ : state) {
        rc = pl_lock_acquire(h.lock); // depth 2
        if (rc == PL_OK)
            rc = pl_lock_release(h.lock); // back to 1
        if (rc != PL_OK || pl_lock_count(h.lock) != 1) {
            Fail(state, pl_lock_errmsg(h.lock));
            break;
        }
    }
    pl_lock_release(h.lock);
    state.SetItemsProcessed(state.iterations());
}

void BM_Probe(benchmark::State &state) {
    pl_probe_t p;
    pl_error_t e;
    for (auto _ : state) {
        if (pl_probe(g_dir.c_str(), &p, &e) != PL_OK) {
            Fail(state, e.msg);
            break;
        }
    }
    state.SetLabel(p.fstype);
    state.SetItemsProcessed(state.iterations());
}

void BM_RawLockUnlock(benchmark::State &state, pl_backend_t b) {
    Fd f(LockPath("rawlockunlock"));
    if (f.fd < 0) {
        Fail(state, std::strerror(errno));
        return;
    }
    for (auto _ : state) {
        int rc = bk_raw_lock(f.fd, b, 0);
        if (rc == 0)
            rc = bk_raw_unlock(f.fd, b);
        if (rc != 0) {
            Fail(state, std::strerror(rc));
            break;
        }
    }
    state.SetItemsProcessed(state.iterations());
}

void BM_RawCycle(benchmark::State &state, pl_backend_t b) {
    std::string path = LockPath("rawcycle");
    for (auto _ : state) {
        int fd = bk_raw_open(path.c_str());
        if (fd < 0) {
            Fail(state, std::strerror(errno));
            break;
        }
        int rc = bk_raw_lock(fd, b, 0);
        if (rc == 0)
            rc = bk_raw_unlock(fd, b);
        close(fd);
        if (rc != 0) {
            Fail(state, std::strerror(rc));
            break;
        }
    }
    state.SetItemsProcessed(state.iterations());
}

void Register() {
    struct B {
        const char *name;
        pl_backend_t b;
    };
    const B backends[] = {{"Flock", PL_BACKEND_FLOCK},
                          {"Lockf", PL_BACKEND_LOCKF},
                          {"Ofd", PL_BACKEND_OFD}};
    // Each raw row next to the row it limits, so that drift in the machine's
    // load hits both alike (run.py also interleaves repetitions randomly).
    for (const B &x : backends) {
        if (!pl_backend_available(x.b))
            continue;
        std::string n = std::string("BM_") + x.name + "_";
        std::string r = std::string("BM_Raw") + x.name + "_";
        benchmark::RegisterBenchmark((r + "LockUnlock").c_str(),
                                     BM_RawLockUnlock, x.b)
            ->UseRealTime();
        benchmark::RegisterBenchmark((n + "LockUnlock").c_str(), BM_LockUnlock,
                                     x.b)
            ->UseRealTime();
        benchmark::RegisterBenchmark((r + "Cycle").c_str(), BM_RawCycle, x.b)
            ->UseRealTime();
        benchmark::RegisterBenchmark((n + "Cycle").c_str(), BM_Cycle, x.b)
            ->UseRealTime();
        benchmark::RegisterBenchmark((n + "Semaphore").c_str(), BM_Semaphore,
                                     x.b)
            ->UseRealTime();
        benchmark::RegisterBenchmark((n + "RLockNest").c_str(), BM_RLockNest,
                                     x.b)
            ->UseRealTime();
    }
    benchmark::RegisterBenchmark("BM_Any_Probe", BM_Probe)->UseRealTime();
}

} // namespace

int main(int argc, char **argv) {
    std::vector<char *> args;
    std::string base;
    for (int i = 0; i < argc; i++) {
        if (std::strncmp(argv[i], "--pl_dir=", 9) == 0)
            base = argv[i] + 9;
        else
            args.push_back(argv[i]);
    }
    if (base.empty()) {
        const char *t = std::getenv("TMPDIR");
        base = t ? t : "/tmp";
    }
    char *dir = bk_mkdtemp(base.c_str());
    if (dir == nullptr) {
        std::perror("pl_bench: mkdtemp");
        return 1;
    }
    g_dir = dir;
    std::free(dir);
    int n = static_cast<int>(args.size());
    args.push_back(nullptr);
    benchmark::Initialize(&n, args.data());
    if (benchmark::ReportUnrecognizedArguments(n, args.data())) {
        bk_rmdir_flat(g_dir.c_str());
        return 1;
    }
    benchmark::AddCustomContext("portalock", pl_version());
    benchmark::AddCustomContext("pl_dir", g_dir);
    Register();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    bk_rmdir_flat(g_dir.c_str());
    if (g_errors != 0) {
        std::fprintf(stderr, "pl_bench: %d benchmark(s) failed\n", g_errors);
        return 1;
    }
    return 0;
}
