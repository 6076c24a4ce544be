"""gradfit_dist's mini-batch order (src/train/batches.cpp, plan_batches), in Python: each epoch one permutation of
the training rows, drawn by Fisher-Yates with std::mt19937_64 seeded by std::seed_seq{seed, seed >> 32, epoch,
epoch >> 32} (32-bit words), an index in [0, b) being (draw * b) >> 64. Both are fixed by the C++ standard, so this
port gives the same rows in the same batches."""

MASK32, MASK64 = 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF


def seed_seq_generate(words, count):
    """std::seed_seq(words).generate() of `count` 32-bit values ([rand.util.seedseq])."""
    v = [w & MASK32 for w in words]
    s, n = len(v), count
    out = [0x8B8B8B8B] * n
    t = 11 if n >= 623 else 7 if n >= 68 else 5 if n >= 39 else 3 if n >= 7 else (n - 1) // 2
    p = (n - t) // 2
    q = p + t
    m = max(s + 1, n)

    def mix(x):
        return x ^ (x >> 27)

    for k in range(m):
        r1 = (1664525 * mix(out[k % n] ^ out[(k + p) % n] ^ out[(k - 1) % n])) & MASK32
        r2 = (r1 + (s if k == 0 else (k % n + v[k - 1] if k <= s else k % n))) & MASK32
        out[(k + p) % n] = (out[(k + p) % n] + r1) & MASK32
        out[(k + q) % n] = (out[(k + q) % n] + r2) & MASK32
        out[k % n] = r2
    for k in range(m, m + n):
        r3 = (1566083941 * mix((out[k % n] + out[(k + p) % n] + out[(k - 1) % n]) & MASK32)) & MASK32
        r4 = (r3 - k % n) & MASK32
        out[(k + p) % n] ^= r3
        out[(k + q) % n] ^= r4
        out[k % n] = r4
    return out


class MT19937_64:
    """std::mt19937_64, seeded from a std::seed_seq of `words`."""
    N, M, MATRIX_A, UPPER, LOWER = 312, 156, 0xB5026F5AA96619E9, 0xFFFFFFFF80000000, 0x7FFFFFFF

    def __init__(self, words):
        a = seed_seq_generate(words, 2 * self.N)
        self.state = [(a[2 * i] | (a[2 * i + 1] << 32)) & MASK64 for i in range(self.N)]
        if (self.state[0] & self.UPPER) == 0 and not any(self.state[1:]):
            self.state[0] = 1 << 63
        self.index = self.N

    def _twist(self):
        x = self.state
        for i in range(self.N):
            y = (x[i] & self.UPPER) | (x[(i + 1) % self.N] & self.LOWER)
            x[i] = x[(i + self.M) % self.N] ^ (y >> 1) ^ (self.MATRIX_A if y & 1 else 0)
        self.index = 0

    def __call__(self):
        if self.index >= self.N:
            self._twist()
        y = self.state[self.index]
        self.index += 1
        y ^= (y >> 29) & 0x5555555555555555
        y ^= (y << 17) & 0x71D67FFFEDA60000
        y ^= (y << 37) & 0xFFF7EEE000000000
        y ^= y >> 43
        return y & MASK64


def batches(total_rows, batch_size, seed, epoch):
    """The global batches of an epoch: lists of row indices, in gradfit_dist's order (no held-out rows)."""
    order = list(range(total_rows))
    if batch_size <= 0 or batch_size >= total_rows:
        return [order]
    rng = MT19937_64([seed & MASK32, seed >> 32, epoch & MASK32, epoch >> 32])
    for i in range(total_rows - 1, 0, -1):
        j = (rng() * (i + 1)) >> 64
        order[i], order[j] = order[j], order[i]
    return [order[b:b + batch_size] for b in range(0, total_rows, batch_size)]
