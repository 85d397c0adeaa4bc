// A cache of large heap blocks for the fuzz targets of the data readers. ASan serves every block
// above 128 KB with a fresh mmap, and the page faults on the readers' 256 KB and 1 MB buffers
// cost ~10 ms per input on a VM, 100x the parsing itself. This operator new/delete (ASan's are
// weak, so these replace them) keeps freed large blocks for reuse and keeps ASan's checks: a
// cached block is poisoned (a use after free is reported as use-after-poison), a reused block is
// unpoisoned only up to the requested size (an overflow is reported), and a small header before
// every block is poisoned while the block is live (an underflow is reported).
#include <sanitizer/asan_interface.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <new>

#include <sys/mman.h>
#include <unistd.h>

namespace {

constexpr size_t kLarge = size_t(128) << 10;    // ASan's primary allocator ends here
constexpr size_t kMaxCached = size_t(8) << 20;  // bigger blocks go back to ASan
constexpr size_t kHeader = 16;                  // keeps the 16-byte alignment of malloc
constexpr uint64_t kLive = 0x4c6976654b727365, kCached = 0x4361636865644b72;
constexpr uint64_t kHuge = 0x487567654b727365;  // a live block above kMaxCached, mapped here
constexpr int kSlots = 16;

struct Header {
    uint64_t capacity;  // 0 for small blocks
    uint64_t state;     // kLive or kCached
};

struct Slot {
    Header* block = nullptr;
};

std::mutex mutex;
Slot slots[kSlots];
int next_victim = 0;

uint8_t* user_of(Header* h) {
    return reinterpret_cast<uint8_t*>(h) + kHeader;
}

[[noreturn]] void corrupt(const char* what) {
    std::fprintf(stderr, "large_alloc_cache: %s\n", what);
    std::abort();
}

// Blocks above kMaxCached (a reserve() sized from a header field, up to hundreds of MB) live in
// their own mapping, kept for the next such block: ASan would write their whole shadow on every
// allocation and free, and fresh pages fault. Every block starts one page into its mapping (so
// the pages a reader touches are the same each time) and is followed by inaccessible pages; the
// bytes between the request and those pages are poisoned (an overflow is caught), and a released
// block is made inaccessible (a use after free faults).
struct HugeTail {  // just before the Header of a huge block
    uint8_t* base;
    size_t span;
};

struct Mapping {
    uint8_t* base = nullptr;
    size_t span = 0;
};
Mapping spare;  // the one released mapping kept for reuse (under mutex)

size_t page_size() {
    return size_t(::sysconf(_SC_PAGESIZE));
}
size_t round_up(size_t n, size_t to) {
    return (n + to - 1) / to * to;
}

void* allocate_huge(size_t n) {
    const size_t page = page_size();
    const size_t need = page + round_up(n, page) + page;  // header page, data, guard page
    Mapping m;
    {
        std::lock_guard<std::mutex> lock(mutex);
        if (spare.base && spare.span >= need) std::swap(m, spare);
    }
    if (!m.base) {
        m.span = need;
        void* p =
            ::mmap(nullptr, m.span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        m.base = static_cast<uint8_t*>(p);
    }
    uint8_t* user = m.base + page;
    if (::mprotect(m.base, page + round_up(n, page), PROT_READ | PROT_WRITE) != 0)
        corrupt("mprotect failed");
    auto* h = reinterpret_cast<Header*>(user - kHeader);
    auto* tail = reinterpret_cast<HugeTail*>(user - kHeader - sizeof(HugeTail));
    tail->base = m.base;
    tail->span = m.span;
    h->capacity = n;
    h->state = kHuge;
    ASAN_POISON_MEMORY_REGION(tail, sizeof(HugeTail) + kHeader);
    ASAN_POISON_MEMORY_REGION(user + n, round_up(n, page) - n);
    return user;
}

void release_huge(Header* h) {
    const size_t page = page_size();
    auto* tail = reinterpret_cast<HugeTail*>(reinterpret_cast<uint8_t*>(h) - sizeof(HugeTail));
    ASAN_UNPOISON_MEMORY_REGION(tail, sizeof(HugeTail));
    Mapping m{tail->base, tail->span};
    ASAN_UNPOISON_MEMORY_REGION(tail, sizeof(HugeTail) + kHeader + round_up(h->capacity, page));
    h->state = 0;
    ::mprotect(m.base, m.span, PROT_NONE);
    std::lock_guard<std::mutex> lock(mutex);
    if (m.span > spare.span) std::swap(m, spare);
    if (m.base) ::munmap(m.base, m.span);
}

void* allocate(size_t n) {
    if (n == 0) n = 1;
    if (n > kMaxCached) return allocate_huge(n);
    Header* h = nullptr;
    size_t capacity = 0;
    if (n >= kLarge && n <= kMaxCached) {
        std::lock_guard<std::mutex> lock(mutex);
        for (Slot& s : slots) {
            if (!s.block) continue;
            ASAN_UNPOISON_MEMORY_REGION(s.block, kHeader);
            const size_t cap = s.block->capacity;
            if (cap >= n && cap / 2 <= n) {
                h = s.block;
                s.block = nullptr;
                capacity = cap;
                break;
            }
            ASAN_POISON_MEMORY_REGION(s.block, kHeader);
        }
    }
    if (!h) {
        h = static_cast<Header*>(std::malloc(n + kHeader));
        if (!h) throw std::bad_alloc();
        capacity = n >= kLarge ? n : 0;
    }
    h->capacity = capacity;
    h->state = kLive;
    ASAN_POISON_MEMORY_REGION(h, kHeader);
    if (capacity) {
        ASAN_POISON_MEMORY_REGION(user_of(h), capacity);
        ASAN_UNPOISON_MEMORY_REGION(user_of(h), n);
    }
    return user_of(h);
}

void release(void* p) {
    if (!p) return;
    auto* h = reinterpret_cast<Header*>(static_cast<uint8_t*>(p) - kHeader);
    ASAN_UNPOISON_MEMORY_REGION(h, kHeader);
    if (h->state == kHuge) return release_huge(h);
    if (h->state != kLive) corrupt("delete of a block that is not live (double free?)");
    const size_t capacity = h->capacity;
    if (capacity) {
        std::lock_guard<std::mutex> lock(mutex);
        // A free slot, or else the next one in turn: the sizes a reader uses now stay cached.
        Slot* slot = nullptr;
        for (Slot& s : slots) {
            if (!s.block) slot = &s;
        }
        if (!slot) {
            slot = &slots[next_victim];
            next_victim = (next_victim + 1) % kSlots;
            std::free(slot->block);
        }
        h->state = kCached;
        ASAN_POISON_MEMORY_REGION(user_of(h), capacity);
        ASAN_POISON_MEMORY_REGION(h, kHeader);
        slot->block = h;
        return;
    }
    h->state = 0;
    std::free(h);
}

}  // namespace

void* operator new(size_t n) {
    return allocate(n);
}
void* operator new[](size_t n) {
    return allocate(n);
}
void* operator new(size_t n, const std::nothrow_t&) noexcept {
    try {
        return allocate(n);
    } catch (...) {
        return nullptr;
    }
}
void* operator new[](size_t n, const std::nothrow_t&) noexcept {
    try {
        return allocate(n);
    } catch (...) {
        return nullptr;
    }
}
void operator delete(void* p) noexcept {
    release(p);
}
void operator delete[](void* p) noexcept {
    release(p);
}
void operator delete(void* p, size_t) noexcept {
    release(p);
}
void operator delete[](void* p, size_t) noexcept {
    release(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
    release(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
    release(p);
}
