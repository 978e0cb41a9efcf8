//! The tests `compare` uses where samples are small, over the calls' latencies as an HDR
//! histogram holds them (equal buckets are ties): for a percentile, a quantile test (how
//! many of each side's calls lie above the pooled percentile, Fisher's exact test: Mood's
//! median test at p50); for counts, an exact binomial test. Each tests the quantity
//! compared, so one slow call among a few dozen moves p99 but proves nothing. Both control the false-positive rate at the
//! level asked for whatever n is, unlike a bootstrap, which needs large samples.

/// The smallest number of calls per side with which the median test can reach `alpha` at
/// all: n calls against n, every new one above every base one, has p = 1 / C(2n, n).
pub(super) fn min_calls_for(alpha: f64) -> u64 {
    let mut n = 1u64;
    while 1.0 / choose(2 * n, n) > alpha {
        n += 1;
    }
    n
}

/// C(n, k) as a float (exact while it fits in 53 bits, and close after).
fn choose(n: u64, k: u64) -> f64 {
    let k = k.min(n - k.min(n));
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// One-sided p-value of "more of `new`'s calls lie above the pooled `q`-quantile than
/// chance would put there" (Fisher's exact test on calls above / not above it).
pub(super) fn quantile_p(base: &[(u64, u64)], new: &[(u64, u64)], q: f64) -> f64 {
    let n_base: u64 = base.iter().map(|b| b.1).sum();
    let n_new: u64 = new.iter().map(|b| b.1).sum();
    let total = n_base + n_new;
    if n_base == 0 || n_new == 0 {
        return 1.0;
    }
    // The cut: between two distinct pooled values, where the share of calls below it is
    // nearest to q (it depends on the pooled calls only, not on their sides, so the test
    // stays exact; ties never straddle it).
    let mut pooled: Vec<(u64, u64)> = base.iter().chain(new).copied().collect();
    pooled.sort_unstable();
    let target = q * total as f64;
    let mut below = 0u64;
    let mut best: Option<(f64, u64)> = None;
    let mut i = 0;
    while i < pooled.len() {
        let v = pooled[i].0;
        while i < pooled.len() && pooled[i].0 == v {
            below += pooled[i].1;
            i += 1;
        }
        let distance = (below as f64 - target).abs();
        if best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, v));
        }
    }
    let Some((_, threshold)) = best else {
        return 1.0;
    };
    let above =
        |side: &[(u64, u64)]| -> u64 { side.iter().filter(|b| b.0 > threshold).map(|b| b.1).sum() };
    let (a_new, a_base) = (above(new), above(base));
    hypergeometric_tail(total, a_new + a_base, n_new, a_new)
}

/// P(X ≥ `k`) for X ~ Hypergeometric(population `n`, `good` successes in it, `draws`).
fn hypergeometric_tail(n: u64, good: u64, draws: u64, k: u64) -> f64 {
    let ln_choose = |n: u64, k: u64| -> f64 {
        let k = k.min(n - k);
        (0..k).map(|i| ((n - i) as f64 / (i + 1) as f64).ln()).sum()
    };
    let lo = k.max((good + draws).saturating_sub(n));
    let hi = good.min(draws);
    if lo > hi {
        return if k == 0 { 1.0 } else { 0.0 };
    }
    let all = ln_choose(n, draws);
    let p: f64 = (lo..=hi)
        .map(|x| (ln_choose(good, x) + ln_choose(n - good, draws - x) - all).exp())
        .sum();
    p.min(1.0)
}

/// The complementary error function (W. J. Cody's rational approximation as given in
/// Numerical Recipes' `erfcc`: relative error below 1.2e-7 everywhere).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// One-sided p-value of "`new` calls is more than `base` calls would give by chance":
/// under equal rates the new side's share of the `base + new` calls is Binomial(·, 1/2).
pub(super) fn count_p(base: u64, new: u64) -> f64 {
    let total = base + new;
    if total == 0 || new <= base {
        return 1.0;
    }
    if total > 1000 {
        // Normal approximation with continuity correction.
        let mean = total as f64 / 2.0;
        let sd = (total as f64 / 4.0).sqrt();
        return 0.5 * erfc((new as f64 - 0.5 - mean) / sd / std::f64::consts::SQRT_2);
    }
    // P(X >= new), X ~ Binomial(total, 1/2), summed in log space.
    let ln_half = total as f64 * 0.5f64.ln();
    let mut ln_c = 0.0f64; // ln C(total, 0)
    let mut sum = 0.0;
    for x in 0..=total {
        if x >= new {
            sum += (ln_c + ln_half).exp();
        }
        ln_c += ((total - x) as f64).ln() - ((x + 1) as f64).ln();
    }
    sum.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALPHA_FOR_TESTS: f64 = 0.01;

    fn ones(values: &[u64]) -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = values.iter().map(|&x| (x, 1)).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn smallest_useful_sample() {
        assert_eq!(min_calls_for(0.01), 5);
        assert_eq!(min_calls_for(0.05), 3);
    }

    #[test]
    fn false_positive_rate_is_controlled() {
        // Two samples of the same distribution, many times: p < 0.01 about 1% of the time.
        let mut rng = 0x1234_5678_9abc_def1u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            10_000 + rng % 3000
        };
        let trials = 1000;
        let mut by_median = 0;
        for _ in 0..trials {
            let b: Vec<u64> = (0..10).map(|_| next()).collect();
            let n: Vec<u64> = (0..10).map(|_| next()).collect();
            by_median += u32::from(quantile_p(&ones(&b), &ones(&n), 0.5) < 0.01);
        }
        assert!(
            by_median <= trials / 50,
            "{by_median} of {trials} at the 1% level"
        );
    }

    #[test]
    fn quantile_test() {
        // 5 against 5 completely apart: at the median, p = 1/252.
        let p = quantile_p(&ones(&[1, 2, 3, 4, 5]), &ones(&[6, 7, 8, 9, 10]), 0.5);
        assert!((p - 1.0 / 252.0).abs() < 1e-12, "{p}");
        // One slow call among 60 moves p99 a lot and proves nothing.
        let base: Vec<u64> = (0..60).map(|i| 170 + i % 7).collect();
        let mut new = base.clone();
        new[30] = 9000;
        assert!(quantile_p(&ones(&base), &ones(&new), 0.99) > 0.2);
        // Every call 30% slower: significant at p50 and p90; p99 of 120 calls has one
        // or two calls beyond it, too few to prove anything either way.
        let slow: Vec<u64> = base.iter().map(|v| v * 13 / 10).collect();
        assert!(quantile_p(&ones(&base), &ones(&slow), 0.5) < 1e-15);
        assert!(quantile_p(&ones(&base), &ones(&slow), 0.9) < ALPHA_FOR_TESTS);
        assert!(quantile_p(&ones(&base), &ones(&slow), 0.99) > ALPHA_FOR_TESTS);
        assert!((hypergeometric_tail(10, 5, 5, 0) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn counts() {
        assert!(count_p(1000, 2000) < 1e-9);
        assert!(count_p(20, 22) > 0.3);
        assert!(count_p(5, 30) < 0.001);
        assert_eq!(count_p(10, 10), 1.0);
        let p = count_p(0, 7);
        assert!((p - 0.5f64.powi(7)).abs() < 1e-12, "{p}");
    }
}
