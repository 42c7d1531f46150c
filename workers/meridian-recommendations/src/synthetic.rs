//! A small seeded random generator (SplitMix64) for the generated data of `recs-eval` and
//! `recs-bench`: the same seed gives the same shop on every machine.

pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Roughly normal with mean 0 (the sum of four uniforms, centred).
    pub fn normal(&mut self) -> f32 {
        (0..4).map(|_| self.unit() as f32).sum::<f32>() - 2.0
    }

    /// A Zipf-distributed index below `n` (exponent 1.1): a few are picked very often.
    pub fn zipf(&mut self, n: usize) -> usize {
        let total: f64 = (1..=n).map(|r| 1.0 / (r as f64).powf(1.1)).sum();
        let mut x = self.unit() * total;
        for r in 1..=n {
            let weight = 1.0 / (r as f64).powf(1.1);
            if x < weight {
                return r - 1;
            }
            x -= weight;
        }
        n - 1
    }
}
