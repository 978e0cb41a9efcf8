//! The tests `compare` uses where samples are small: a one-sided Mann-Whitney rank-sum
//! test over the calls' latencies (as an HDR histogram holds them, so equal buckets are
//! ties), exact by dynamic programming over the tied mid-ranks while both sides together
//! hold at most [`EXACT_N`] calls and with the tie-corrected normal approximation above,
//! for the mean; a quantile test for a percentile (how many of each side's calls lie above
//! the pooled percentile, Fisher's exact test: Mood's median test at p50), so that one
//! slow call among a few dozen moves p99 but proves nothing; and an exact binomial test for
//! counts. Both control the false-positive rate at the
//! level asked for whatever n is, unlike a bootstrap, which needs large samples.

/// Calls, both sides together, up to which the rank test is computed exactly.
pub(super) const EXACT_N: u64 = 80;

/// The smallest number of calls per side with which the rank test can reach
/// `alpha` at all: complete separation of n calls against n has p = 1 / C(2n, n).
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

/// One-sided p-value of "`new`'s values are stochastically larger than `base`'s", each
/// given as sorted (value, count) buckets.
pub(super) fn rank_sum_p(base: &[(u64, u64)], new: &[(u64, u64)]) -> f64 {
    let n_base: u64 = base.iter().map(|b| b.1).sum();
    let n_new: u64 = new.iter().map(|b| b.1).sum();
    if n_base == 0 || n_new == 0 {
        return 1.0;
    }
    // Pooled tie groups in value order: (calls from base, calls from new).
    let mut groups: Vec<(u64, u64)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < base.len() || j < new.len() {
        let (vb, vn) = (
            base.get(i).map_or(u64::MAX, |b| b.0),
            new.get(j).map_or(u64::MAX, |b| b.0),
        );
        let v = vb.min(vn);
        let mut g = (0, 0);
        if vb == v {
            g.0 = base[i].1;
            i += 1;
        }
        if vn == v {
            g.1 = new[j].1;
            j += 1;
        }
        groups.push(g);
    }
    // Doubled mid-ranks (integers) of each group, and the observed doubled rank sum.
    let mut below = 0u64;
    let mut doubled = Vec::with_capacity(groups.len());
    let mut observed = 0u64;
    for &(b, n) in &groups {
        let t = b + n;
        let d = 2 * below + t + 1;
        doubled.push((t, d));
        observed += n * d;
        below += t;
    }
    let total = n_base + n_new;
    if total <= EXACT_N {
        exact_p(&doubled, n_new, observed, total)
    } else {
        normal_p(&groups, n_base, n_new, observed)
    }
}

/// P(doubled rank sum of a random `k`-subset ≥ `observed`), counting subsets.
fn exact_p(groups: &[(u64, u64)], k: u64, observed: u64, total: u64) -> f64 {
    let k = k as usize;
    let max_sum = (2 * total * (total + 1)) as usize;
    // ways[c][s]: subsets of c calls from the groups so far with doubled rank sum s.
    let mut ways = vec![vec![0.0f64; max_sum + 1]; k + 1];
    ways[0][0] = 1.0;
    let mut taken_max = 0usize;
    for &(t, d) in groups {
        let (t, d) = (t as usize, d as usize);
        let mut next = vec![vec![0.0f64; max_sum + 1]; k + 1];
        for c in 0..=taken_max.min(k) {
            for (s, &w) in ways[c].iter().enumerate() {
                if w == 0.0 {
                    continue;
                }
                for j in 0..=t.min(k - c) {
                    let s2 = s + j * d;
                    if s2 <= max_sum {
                        next[c + j][s2] += w * choose(t as u64, j as u64);
                    }
                }
            }
        }
        taken_max += t;
        ways = next;
    }
    let all = choose(total, k as u64);
    let at_least: f64 = ways[k].iter().skip(observed as usize).sum();
    (at_least / all).min(1.0)
}

/// The normal approximation to the rank-sum test, with the tie correction and a
/// continuity correction.
fn normal_p(groups: &[(u64, u64)], n_base: u64, n_new: u64, observed_doubled: u64) -> f64 {
    let (n1, n2) = (n_new as f64, n_base as f64);
    let n = n1 + n2;
    let w = observed_doubled as f64 / 2.0;
    let mean = n1 * (n + 1.0) / 2.0;
    let ties: f64 = groups
        .iter()
        .map(|&(b, m)| {
            let t = (b + m) as f64;
            t * t * t - t
        })
        .sum();
    let var = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if var <= 0.0 {
        return 1.0;
    }
    let z = (w - mean - 0.5) / var.sqrt();
    0.5 * erfc(z / std::f64::consts::SQRT_2)
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

/// One-sided p-value of "more of `new`'s calls lie above the pooled `q`-quantile than
/// chance would put there" (Fisher's exact test on calls above / not above it).
pub(super) fn quantile_p(base: &[(u64, u64)], new: &[(u64, u64)], q: f64) -> f64 {
    let n_base: u64 = base.iter().map(|b| b.1).sum();
    let n_new: u64 = new.iter().map(|b| b.1).sum();
    let total = n_base + n_new;
    if n_base == 0 || n_new == 0 {
        return 1.0;
    }
    // The pooled q-quantile: the smallest value with at least ceil(q * total) calls at or
    // below it.
    let mut pooled: Vec<(u64, u64)> = base.iter().chain(new).copied().collect();
    pooled.sort_unstable();
    let target = ((total as f64 * q).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    let mut threshold = pooled.last().map_or(0, |p| p.0);
    for (v, c) in &pooled {
        seen += c;
        if seen >= target {
            threshold = *v;
            break;
        }
    }
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
    fn exact_rank_test_matches_the_textbook() {
        // Complete separation, 5 against 5: p = 1/252.
        let p = rank_sum_p(&ones(&[1, 2, 3, 4, 5]), &ones(&[6, 7, 8, 9, 10]));
        assert!((p - 1.0 / 252.0).abs() < 1e-12, "{p}");
        // The other way round it is as far from significant as can be.
        let p = rank_sum_p(&ones(&[6, 7, 8, 9, 10]), &ones(&[1, 2, 3, 4, 5]));
        assert!((p - 1.0).abs() < 1e-12, "{p}");
        // All tied: nothing to see.
        let p = rank_sum_p(&[(5, 10)], &[(5, 10)]);
        assert!((p - 1.0).abs() < 1e-12, "{p}");
        assert_eq!(min_calls_for(0.01), 5);
        assert_eq!(min_calls_for(0.05), 3);
    }

    #[test]
    fn exact_and_normal_agree_near_the_switch() {
        // 40 against 40, shifted by a quarter of the spread.
        let b: Vec<u64> = (0..40).map(|i| 1000 + i * 10).collect();
        let n: Vec<u64> = (0..40).map(|i| 1100 + i * 10).collect();
        let (b, n) = (ones(&b), ones(&n));
        let exact = rank_sum_p(&b, &n);
        let groups: Vec<(u64, u64)> = {
            let mut all: Vec<(u64, bool)> = b.iter().map(|x| (x.0, false)).collect();
            all.extend(n.iter().map(|x| (x.0, true)));
            all.sort_unstable();
            let mut g: Vec<(u64, u64, u64)> = Vec::new();
            for (v, new) in all {
                match g.last_mut() {
                    Some(last) if last.0 == v => {
                        if new {
                            last.2 += 1
                        } else {
                            last.1 += 1
                        }
                    }
                    _ => g.push((v, u64::from(!new), u64::from(new))),
                }
            }
            g.into_iter().map(|(_, b, n)| (b, n)).collect()
        };
        let mut below = 0;
        let mut obs = 0;
        for &(gb, gn) in &groups {
            obs += gn * (2 * below + gb + gn + 1);
            below += gb + gn;
        }
        let approx = normal_p(&groups, 40, 40, obs);
        assert!(
            exact < 0.01 && (exact - approx).abs() < 0.002,
            "{exact} {approx}"
        );
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
        let trials = 2000;
        let mut flagged = 0;
        for _ in 0..trials {
            let b: Vec<u64> = (0..10).map(|_| next()).collect();
            let n: Vec<u64> = (0..10).map(|_| next()).collect();
            if rank_sum_p(&ones(&b), &ones(&n)) < 0.01 {
                flagged += 1;
            }
        }
        assert!(
            flagged <= trials / 50,
            "{flagged} of {trials} at the 1% level"
        );
    }

    #[test]
    fn quantile_test() {
        // 5 against 5 completely apart: at the median, p = 1/252 as with the rank test.
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
