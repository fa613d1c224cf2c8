/* The thread pool of the native depthwise convolution: a few pthreads that wait on a
 * condition variable. By default nothing spins (a busy machine's other processes keep their
 * cores). dw_pool_spin sets a bounded spin instead: a worker that has finished a job watches
 * for the next one for that long before it sleeps, and the caller watches for its workers to
 * finish for as long before it sleeps, as PyTorch's OpenMP threads do (libgomp spins before
 * it sleeps). A layer's calls follow each other within tens of microseconds, and a sleeping
 * thread (an idle virtual processor, above all) can take as long again to wake, which on
 * small tensors can cost as much as the work; an idle pool then costs at most the spin of a
 * core after a call. The spin changes when threads run, never which task computes what.
 * One parallel job at a time; a caller that finds the pool busy runs its tasks on its own
 * thread. */
#include <time.h>

#include "depthwise.h"

#if defined(__linux__)
#include <dlfcn.h>
/* PyTorch's OpenMP runtime, where the caller has handed it over (dw_use_openmp): work then runs
 * on the threads of PyTorch's own intra-op team. Two pools side by side compete for the cores:
 * an OpenMP team spins for a while after each of PyTorch's parallel regions, and a kernel of
 * this pool that starts then shares its cores with the spinning threads (measured, 2 cores,
 * PyTorch calls interleaved with the fused separable kernel: 4.5 ms a call against 2.8 with
 * the OpenMP threads told not to spin). */
typedef void (*gomp_parallel_fn)(void (*)(void *), void *, unsigned, unsigned);
static gomp_parallel_fn gomp_parallel;

/* Use the OpenMP runtime loaded from `path` (already loaded: PyTorch's); NULL stops using it.
 * Returns 1 where it is used from now on. */
DW_EXPORT int dw_use_openmp(const char *path)
{
    gomp_parallel = NULL;
    if (!path)
        return 0;
    void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    if (!h)
        return 0;
    gomp_parallel = (gomp_parallel_fn)dlsym(h, "GOMP_parallel");
    return gomp_parallel != NULL;
}

typedef struct {
    task_fn fn;
    void *ctx;
    ptrdiff_t ntasks, next;
} omp_job_t;

static void omp_body(void *arg)
{
    omp_job_t *job = arg;
    for (;;) {
        ptrdiff_t i = __atomic_fetch_add(&job->next, 1, __ATOMIC_RELAXED);
        if (i >= job->ntasks)
            return;
        job->fn(job->ctx, i);
    }
}
#else
DW_EXPORT int dw_use_openmp(const char *path)
{
    (void)path;
    return 0;
}
#endif

static long spin_ns = 0; /* nanoseconds; 0: sleep at once */

/* Set how long (nanoseconds) pool threads watch for work before they sleep; returns the
 * previous value. A negative value only returns it. */
DW_EXPORT long dw_pool_spin(long ns)
{
    long old = __atomic_load_n(&spin_ns, __ATOMIC_RELAXED);
    if (ns >= 0)
        __atomic_store_n(&spin_ns, ns, __ATOMIC_RELAXED);
    return old;
}

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Watch *gen until it differs from seen (gen given) or *count until it is 0, for at most
 * spin_ns. */
static void spin_wait(const unsigned long *gen, unsigned long seen, const int *count)
{
    long limit = __atomic_load_n(&spin_ns, __ATOMIC_RELAXED);
    if (limit <= 0)
        return;
    long long start = now_ns();
    for (unsigned i = 1;; i++) {
        if (gen ? __atomic_load_n(gen, __ATOMIC_ACQUIRE) != seen
                : __atomic_load_n(count, __ATOMIC_ACQUIRE) == 0)
            return;
        cpu_relax();
        if ((i & 31) == 0 && now_ns() - start > limit)
            return;
    }
}

/* ---- thread pool ------------------------------------------------------------------------ */

#define MAX_WORKERS 255
static pthread_mutex_t pool_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t job_mutex = PTHREAD_MUTEX_INITIALIZER; /* one parallel job at a time */
static pthread_cond_t pool_start = PTHREAD_COND_INITIALIZER;
static pthread_cond_t pool_done = PTHREAD_COND_INITIALIZER;
static int pool_workers = 0;
static unsigned long job_gen = 0;
static int job_open = 0, job_running = 0, job_wanted = 0;
static task_fn job_fn;
static void *job_ctx;
static ptrdiff_t job_tasks;
static ptrdiff_t job_next; /* atomic */

static void run_tasks(task_fn fn, void *ctx, ptrdiff_t ntasks)
{
    for (;;) {
        ptrdiff_t i = __atomic_fetch_add(&job_next, 1, __ATOMIC_RELAXED);
        if (i >= ntasks)
            return;
        fn(ctx, i);
    }
}

static void *worker_main(void *arg)
{
    int index = (int)(ptrdiff_t)arg;
    unsigned long seen = 0;
    pthread_mutex_lock(&pool_mutex);
    for (;;) {
        if (job_gen == seen) {
            pthread_mutex_unlock(&pool_mutex);
            spin_wait(&job_gen, seen, NULL);
            pthread_mutex_lock(&pool_mutex);
        }
        while (job_gen == seen)
            pthread_cond_wait(&pool_start, &pool_mutex);
        seen = job_gen;
        if (!job_open || index >= job_wanted)
            continue;
        __atomic_add_fetch(&job_running, 1, __ATOMIC_RELAXED);
        task_fn fn = job_fn;
        void *ctx = job_ctx;
        ptrdiff_t ntasks = job_tasks;
        pthread_mutex_unlock(&pool_mutex);
        run_tasks(fn, ctx, ntasks);
        pthread_mutex_lock(&pool_mutex);
        if (__atomic_sub_fetch(&job_running, 1, __ATOMIC_RELEASE) == 0)
            pthread_cond_signal(&pool_done);
    }
    return NULL;
}

static void pool_after_fork(void)
{
    /* the child has none of the parent's workers */
    pthread_mutex_init(&pool_mutex, NULL);
    pthread_mutex_init(&job_mutex, NULL);
    pthread_cond_init(&pool_start, NULL);
    pthread_cond_init(&pool_done, NULL);
    pool_workers = 0;
    job_open = job_running = 0;
}

void parallel_for(task_fn fn, void *ctx, ptrdiff_t ntasks, int threads)
{
    if (threads > ntasks)
        threads = (int)ntasks;
    if (threads > MAX_WORKERS + 1)
        threads = MAX_WORKERS + 1;
    if (threads <= 1) {
        for (ptrdiff_t i = 0; i < ntasks; i++)
            fn(ctx, i);
        return;
    }
#if defined(__linux__)
    gomp_parallel_fn omp = gomp_parallel;
    if (omp) {
        omp_job_t job = {fn, ctx, ntasks, 0};
        omp(omp_body, &job, (unsigned)threads, 0);
        return;
    }
#endif
    if (pthread_mutex_trylock(&job_mutex) != 0) {
        for (ptrdiff_t i = 0; i < ntasks; i++)
            fn(ctx, i);
        return;
    }
    static int atfork_done = 0;
    pthread_mutex_lock(&pool_mutex);
    if (!atfork_done) {
        pthread_atfork(NULL, NULL, pool_after_fork);
        atfork_done = 1;
    }
    while (pool_workers < threads - 1) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attr, worker_main, (void *)(ptrdiff_t)pool_workers);
        pthread_attr_destroy(&attr);
        if (failed)
            break;
        pool_workers++;
    }
    job_fn = fn;
    job_ctx = ctx;
    job_tasks = ntasks;
    job_wanted = threads - 1;
    __atomic_store_n(&job_next, 0, __ATOMIC_RELAXED);
    job_open = 1;
    __atomic_store_n(&job_gen, job_gen + 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&pool_start);
    pthread_mutex_unlock(&pool_mutex);
    run_tasks(fn, ctx, ntasks);
    pthread_mutex_lock(&pool_mutex);
    job_open = 0; /* workers that wake from now on leave the job alone */
    if (job_running > 0) { /* the workers' last tasks */
        pthread_mutex_unlock(&pool_mutex);
        spin_wait(NULL, 0, &job_running);
        pthread_mutex_lock(&pool_mutex);
    }
    while (job_running > 0)
        pthread_cond_wait(&pool_done, &pool_mutex);
    pthread_mutex_unlock(&pool_mutex);
    pthread_mutex_unlock(&job_mutex);
}
