/**
 * Goodness of fit for the sampler tests: Pearson's chi-square statistic over bins and its p-value,
 * the regularized upper incomplete gamma Q(k/2, x/2) (series for x < a + 1, Lentz's continued
 * fraction otherwise, as in Numerical Recipes 6.2).
 */

function logGamma(x: number): number {
  // Lanczos, g = 7, n = 9.
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let a = c[0]!;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Q(a, x) = Gamma(a, x) / Gamma(a). */
export function gammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  if (x < a + 1) {
    let sum = 1 / a;
    let term = sum;
    for (let n = 1; n < 10_000; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-15) break;
    }
    return 1 - sum * Math.exp(-x + a * Math.log(x) - logGamma(a));
  }
  let b = x + 1 - a;
  let c = 1 / 1e-300;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 10_000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < 1e-300) d = 1e-300;
    c = b + an / c;
    if (Math.abs(c) < 1e-300) c = 1e-300;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return Math.exp(-x + a * Math.log(x) - logGamma(a)) * h;
}

/**
 * The p-value of observed integer samples against a pmf on the integers: bins are the values
 * whose expected count is at least 5, and two tails that collect the rest.
 */
export function chiSquarePValue(
  samples: readonly number[],
  pmf: (x: number) => number,
): { p: number; statistic: number; bins: number } {
  const n = samples.length;
  const counts = new Map<number, number>();
  for (const s of samples) counts.set(s, (counts.get(s) ?? 0) + 1);
  // Grow a central window while its bins expect at least 5.
  let lo = 0;
  let hi = 0;
  while (pmf(lo - 1) * n >= 5) lo--;
  while (pmf(hi + 1) * n >= 5) hi++;
  let statistic = 0;
  let bins = 0;
  let inside = 0;
  for (let x = lo; x <= hi; x++) {
    const expected = pmf(x) * n;
    const observed = counts.get(x) ?? 0;
    inside += pmf(x);
    statistic += (observed - expected) ** 2 / expected;
    bins++;
  }
  // The tails, together.
  const tailExpected = (1 - inside) * n;
  let tailObserved = 0;
  for (const [x, c] of counts) if (x < lo || x > hi) tailObserved += c;
  if (tailExpected >= 1e-9) {
    statistic += (tailObserved - tailExpected) ** 2 / tailExpected;
    bins++;
  }
  return { p: gammaQ((bins - 1) / 2, statistic / 2), statistic, bins };
}
