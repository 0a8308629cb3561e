//! Arrival schedules for `latamctl publish`: the seed's load shapes (constant, linear,
//! incremental, wave) as send times.
//!
//! Each pattern is a rate function r(t) on [0, T] peaking at `rate`; message i is sent when
//! the cumulative arrivals Λ(t) = ∫r reach i. The schedule is fixed up front (open model):
//! senders start on schedule even when earlier requests are slow, and latency is measured
//! from the scheduled time, so a slow server cannot hide its slowness (no coordinated
//! omission).

use std::f64::consts::PI;
use std::time::Duration;

use serde::Serialize;

/// Load shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Pattern {
    /// Steady `rate` messages per second.
    Constant,
    /// Ramps up from 0 to `rate` over the run.
    Linear,
    /// Climbs to `rate` in equal steps (`--steps`).
    Incremental,
    /// Oscillates between 0 and `rate` with period `--period` (peaks).
    Wave,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    #[error("--rate must be a positive number of messages per second")]
    Rate,
    #[error("give --count or --duration, not both")]
    Both,
    #[error("--count must be at least 1")]
    Count,
    #[error("--duration must be longer than zero")]
    Duration,
    #[error("--steps must be at least 1")]
    Steps,
    #[error("--period must be longer than zero")]
    Period,
}

/// What to send.
#[derive(Debug, Clone, Serialize)]
pub struct Shape {
    pub pattern: Pattern,
    /// Peak rate, messages per second.
    pub rate: f64,
    /// Number of messages (derives the duration).
    pub count: Option<u64>,
    /// Run length (derives the count).
    #[serde(with = "humantime_serde")]
    pub duration: Option<Duration>,
    /// Steps of the incremental pattern.
    pub steps: u32,
    /// Period of the wave pattern.
    #[serde(with = "humantime_serde")]
    pub period: Duration,
}

impl Shape {
    fn validate(&self) -> Result<(), Error> {
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return Err(Error::Rate);
        }
        match (self.count, self.duration) {
            (Some(_), Some(_)) => return Err(Error::Both),
            (Some(0), _) => return Err(Error::Count),
            (_, Some(d)) if d.is_zero() => return Err(Error::Duration),
            _ => {}
        }
        if self.steps == 0 {
            return Err(Error::Steps);
        }
        if self.period.is_zero() {
            return Err(Error::Period);
        }
        Ok(())
    }

    /// Average rate as a fraction of the peak over a run of length `t`.
    fn mean_fraction(&self, t: f64) -> f64 {
        match self.pattern {
            Pattern::Constant => 1.0,
            Pattern::Linear => 0.5,
            Pattern::Incremental => {
                let k = f64::from(self.steps);
                (k + 1.0) / (2.0 * k)
            }
            Pattern::Wave => self.cumulative(t, t) / (self.rate * t),
        }
    }

    /// Λ(t): messages sent by time `t` in a run of length `total`.
    fn cumulative(&self, t: f64, total: f64) -> f64 {
        let r = self.rate;
        match self.pattern {
            Pattern::Constant => r * t,
            Pattern::Linear => r * t * t / (2.0 * total),
            Pattern::Incremental => {
                let k = f64::from(self.steps);
                let step_len = total / k;
                let full = (t / step_len).floor().min(k - 1.0);
                let done: f64 = (1..=full as u32).map(|j| f64::from(j) * step_len).sum();
                r / k * (done + (full + 1.0) * (t - full * step_len))
            }
            Pattern::Wave => {
                let p = self.period.as_secs_f64();
                r / 2.0 * (t - p / (2.0 * PI) * (2.0 * PI * t / p).sin())
            }
        }
    }

    /// Run length and message count.
    pub fn plan(&self) -> Result<(Duration, u64), Error> {
        self.validate()?;
        match (self.count, self.duration) {
            (_, Some(d)) => {
                let t = d.as_secs_f64();
                Ok((d, self.cumulative(t, t).floor().max(1.0) as u64))
            }
            (count, None) => {
                let n = count.unwrap_or(100) as f64;
                // Solve n = rate × mean_fraction × T; the wave's mean depends on T, iterate.
                let mut t = n / (self.rate * self.mean_fraction(n / self.rate));
                for _ in 0..20 {
                    t = n / (self.rate * self.mean_fraction(t));
                }
                Ok((Duration::from_secs_f64(t), n as u64))
            }
        }
    }

    /// Send offsets from the start, one per message, non-decreasing.
    pub fn schedule(&self) -> Result<Vec<Duration>, Error> {
        let (duration, count) = self.plan()?;
        let total = duration.as_secs_f64();
        let end = self.cumulative(total, total);
        let mut out = Vec::with_capacity(count as usize);
        let mut lo = 0.0;
        for i in 0..count {
            // Spread the count over the run: message i at Λ⁻¹(i × Λ(T) / count).
            let target = i as f64 * end / count as f64;
            let (mut a, mut b) = (lo, total);
            for _ in 0..60 {
                let mid = (a + b) / 2.0;
                if self.cumulative(mid, total) < target {
                    a = mid;
                } else {
                    b = mid;
                }
            }
            lo = b;
            out.push(Duration::from_secs_f64(b));
        }
        Ok(out)
    }
}

/// Percentiles of a latency sample.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Percentiles {
    pub count: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    pub fn of(samples: &mut [Duration]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            // Nearest-rank percentile.
            let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            samples[rank - 1].as_secs_f64() * 1000.0
        };
        Self {
            count: samples.len(),
            p50_ms: at(0.50),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(pattern: Pattern, count: u64) -> Shape {
        Shape {
            pattern,
            rate: 100.0,
            count: Some(count),
            duration: None,
            steps: 4,
            period: Duration::from_secs(2),
        }
    }

    /// Messages sent in each of `buckets` equal slices of the run.
    fn histogram(s: &Shape, buckets: usize) -> Vec<usize> {
        let (d, _) = s.plan().unwrap();
        let sched = s.schedule().unwrap();
        let mut h = vec![0; buckets];
        for t in sched {
            let i = ((t.as_secs_f64() / d.as_secs_f64()) * buckets as f64) as usize;
            h[i.min(buckets - 1)] += 1;
        }
        h
    }

    #[test]
    fn every_pattern_sends_exactly_count_in_order() {
        for p in [
            Pattern::Constant,
            Pattern::Linear,
            Pattern::Incremental,
            Pattern::Wave,
        ] {
            let s = shape(p, 1000);
            let sched = s.schedule().unwrap();
            assert_eq!(sched.len(), 1000, "{p:?}");
            assert!(sched.windows(2).all(|w| w[0] <= w[1]), "{p:?} not ordered");
            let (d, n) = s.plan().unwrap();
            assert_eq!(n, 1000);
            assert!(*sched.last().unwrap() <= d, "{p:?} runs past its duration");
        }
    }

    #[test]
    fn constant_is_flat_at_the_rate() {
        let s = shape(Pattern::Constant, 1000);
        assert_eq!(s.plan().unwrap().0, Duration::from_secs(10));
        let h = histogram(&s, 10);
        assert!(h.iter().all(|&c| (99..=101).contains(&c)), "{h:?}");
    }

    #[test]
    fn linear_ramps_up() {
        let s = shape(Pattern::Linear, 1000);
        // Mean rate is half the peak: twice as long as constant.
        assert_eq!(s.plan().unwrap().0, Duration::from_secs(20));
        let h = histogram(&s, 2);
        // Λ(T/2) = 1/4 of the total.
        assert!(
            (240..=260).contains(&h[0]) && (740..=760).contains(&h[1]),
            "{h:?}"
        );
        let h = histogram(&s, 10);
        assert!(h.windows(2).all(|w| w[0] < w[1]), "not increasing: {h:?}");
    }

    #[test]
    fn incremental_climbs_in_equal_steps() {
        let s = shape(Pattern::Incremental, 1000);
        let h = histogram(&s, 4);
        // Steps at 1/4, 2/4, 3/4, 4/4 of the peak: 10 %, 20 %, 30 %, 40 % of messages.
        for (i, want) in [100, 200, 300, 400].iter().enumerate() {
            assert!(h[i].abs_diff(*want) <= 2, "step {i}: {h:?}");
        }
    }

    #[test]
    fn wave_has_peaks_and_troughs() {
        let s = shape(Pattern::Wave, 1000);
        let (d, _) = s.plan().unwrap();
        // Mean of (1 - cos)/2 is 1/2: about 20 s at peak 100/s.
        assert!((d.as_secs_f64() - 20.0).abs() < 0.5, "{d:?}");
        // 2 s period, 0.5 s buckets (quarter periods): rate is low around k·P and high
        // around (k+½)·P, so the middle quarters of each period carry ~4.5× the outer ones.
        let h = histogram(&s, 40);
        let (mut peaks, mut troughs) = (0, 0);
        for period in h.chunks(4) {
            troughs += period[0] + period[3];
            peaks += period[1] + period[2];
        }
        assert!(peaks > 3 * troughs, "{h:?}");
    }

    #[test]
    fn duration_derives_the_count() {
        let s = Shape {
            count: None,
            duration: Some(Duration::from_secs(5)),
            ..shape(Pattern::Constant, 1)
        };
        assert_eq!(s.plan().unwrap().1, 500);
        assert_eq!(s.schedule().unwrap().len(), 500);
    }

    #[test]
    fn bad_shapes_are_rejected() {
        let mut s = shape(Pattern::Constant, 10);
        s.rate = 0.0;
        assert_eq!(s.plan().unwrap_err(), Error::Rate);
        let mut s = shape(Pattern::Constant, 10);
        s.duration = Some(Duration::from_secs(1));
        assert_eq!(s.plan().unwrap_err(), Error::Both);
        assert_eq!(
            shape(Pattern::Constant, 0).plan().unwrap_err(),
            Error::Count
        );
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let p = Percentiles::of(&mut v);
        assert_eq!(
            (p.p50_ms, p.p95_ms, p.p99_ms, p.max_ms),
            (50.0, 95.0, 99.0, 100.0)
        );
        assert_eq!(Percentiles::of(&mut []), Percentiles::default());
    }
}
