//! Broker-gap refinements, as pure functions over what the broker answered and what was read.
//!
//! Two answers of some brokers (tansu 0.6) are only lower bounds:
//! - the high watermark after a multi-record batch is reported as the batch's base offset + 1;
//! - ListOffsets by timestamp answers the base offset of the batch holding the record (or 0
//!   when no record is that recent).
//!
//! The backend (`data.rs`) refines both by reading from the broker's answer on, and these
//! functions decide what to read and what the reads mean. On a broker that answers exactly
//! the refinement reads one record (the high watermark) or finds the answer in the first
//! record read (timestamps), and changes nothing.
//!
//! Both rely on the broker's answer never being *past* the truth: a lower bound can be
//! refined by reading forward, an overshoot could not be detected without reading from the
//! log start.

use fleetwatch_core::Watermarks;

/// Where to read to check the reported high watermark: the last offset it claims
/// (`high - 1`), or `None` for an empty partition (nothing to refine).
pub(crate) fn high_probe(reported: Watermarks) -> Option<i64> {
    (reported.high > reported.log_start).then(|| reported.high - 1)
}

/// The true range given the reported one and the offsets of the records read from
/// [`high_probe`] on (everything that arrived without waiting): one past the last record
/// read, never below the report.
pub(crate) fn refined_high(
    reported: Watermarks,
    read: impl IntoIterator<Item = i64>,
) -> Watermarks {
    let high = read
        .into_iter()
        .map(|o| o + 1)
        .fold(reported.high, i64::max);
    Watermarks {
        log_start: reported.log_start,
        high,
    }
}

/// Where the scan for the first record at or after a timestamp starts: the broker's answer
/// clamped to the (refined) range, or the end when it had none.
pub(crate) fn timestamp_scan_start(answer: Option<i64>, range: Watermarks) -> i64 {
    match answer {
        Some(o) if o >= 0 => o.clamp(range.log_start, range.high.max(range.log_start)),
        _ => range.high,
    }
}

/// What one read of the timestamp scan tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeScan {
    /// The first record at or after the timestamp is at this offset.
    Found(i64),
    /// Not yet found: read again from this offset.
    ReadFrom(i64),
    /// No record is that recent: the answer is the high watermark.
    End(i64),
}

/// One step of the scan: `read` are the `(offset, timestamp)` pairs read from `from`, in
/// offset order. The first record whose timestamp is ≥ `target` is the answer — Kafka's rule
/// also when timestamps are not monotonic (its ListOffsets picks the first batch whose *max*
/// timestamp is ≥ target, then the first such record in it, which is the first such record
/// overall).
pub(crate) fn timestamp_scan_step(
    target: i64,
    from: i64,
    range: Watermarks,
    read: impl IntoIterator<Item = (i64, i64)>,
) -> TimeScan {
    if from >= range.high {
        return TimeScan::End(range.high);
    }
    let mut last = None;
    for (offset, ts) in read {
        if offset < from {
            continue;
        }
        if ts >= target {
            return TimeScan::Found(offset);
        }
        last = Some(offset);
    }
    match last {
        Some(o) if o + 1 < range.high => TimeScan::ReadFrom(o + 1),
        _ => TimeScan::End(range.high),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A partition as batches of record timestamps, and what tansu 0.6 answers about it.
    struct Partition {
        batches: Vec<Vec<i64>>,
    }

    impl Partition {
        fn records(&self) -> Vec<(i64, i64)> {
            self.batches
                .iter()
                .flatten()
                .enumerate()
                .map(|(o, ts)| (o as i64, *ts))
                .collect()
        }

        fn bases(&self) -> Vec<i64> {
            let mut base = 0;
            self.batches
                .iter()
                .map(|b| {
                    let at = base;
                    base += b.len() as i64;
                    at
                })
                .collect()
        }

        fn true_high(&self) -> i64 {
            self.records().len() as i64
        }

        /// tansu: the last batch's base offset + 1.
        fn reported_high(&self) -> Watermarks {
            Watermarks {
                log_start: 0,
                high: self.bases().last().map_or(0, |b| b + 1),
            }
        }

        /// tansu: the base of the first batch whose max timestamp is ≥ ts, else 0.
        fn lookup(&self, ts: i64) -> Option<i64> {
            let bases = self.bases();
            Some(
                self.batches
                    .iter()
                    .zip(bases)
                    .find(|(b, _)| b.iter().any(|t| *t >= ts))
                    .map_or(0, |(_, base)| base),
            )
        }

        /// A fetch from `offset`: up to `max` records at or after it, preceded by the earlier
        /// records of the batch holding it (librdkafka drops those; keeping them here tests
        /// the functions' own filtering too).
        fn fetch(&self, offset: i64, max: usize) -> Vec<(i64, i64)> {
            let bases = self.bases();
            let start = bases.iter().rposition(|b| *b <= offset).unwrap_or(0);
            let base = bases.get(start).copied().unwrap_or(0);
            let records = self.records().into_iter().skip(base as usize);
            let (before, from): (Vec<_>, Vec<_>) = records.partition(|(o, _)| *o < offset);
            before
                .into_iter()
                .chain(from.into_iter().take(max))
                .collect()
        }

        /// The backend's refinements, driven over this model.
        fn refined_high(&self) -> Watermarks {
            let reported = self.reported_high();
            match high_probe(reported) {
                None => reported,
                Some(at) => refined_high(
                    reported,
                    self.fetch(at, usize::MAX)
                        .into_iter()
                        .map(|(o, _)| o)
                        .filter(|o| *o >= at),
                ),
            }
        }

        fn offset_for_time(&self, ts: i64, max: usize) -> i64 {
            let range = self.refined_high();
            let mut from = timestamp_scan_start(self.lookup(ts), range);
            loop {
                match timestamp_scan_step(ts, from, range, self.fetch(from, max)) {
                    TimeScan::Found(o) | TimeScan::End(o) => return o,
                    TimeScan::ReadFrom(next) => {
                        assert!(next > from, "the scan must advance");
                        from = next;
                    }
                }
            }
        }

        /// The truth: the first record with a timestamp ≥ ts, else the end.
        fn truth_for_time(&self, ts: i64) -> i64 {
            self.records()
                .into_iter()
                .find(|(_, t)| *t >= ts)
                .map_or(self.true_high(), |(o, _)| o)
        }
    }

    #[test]
    fn high_watermark_table() {
        #[rustfmt::skip]
        let table: &[(&str, Vec<Vec<i64>>, i64)] = &[
            ("empty partition", vec![], 0),
            ("one single-record batch", vec![vec![10]], 1),
            ("single-record batches", vec![vec![10], vec![20], vec![30]], 3),
            ("one multi-record batch", vec![vec![10, 20, 30, 40]], 4),
            ("multi-record batches", vec![vec![10, 20], vec![30, 40, 50]], 5),
            ("multi then single", vec![vec![10, 20, 30], vec![40]], 4),
            ("single then multi", vec![vec![10], vec![20, 30, 40]], 4),
        ];
        for (name, batches, want) in table {
            let p = Partition {
                batches: batches.clone(),
            };
            assert_eq!(p.refined_high().high, *want, "{name}");
            assert_eq!(p.refined_high().log_start, 0, "{name}");
        }
    }

    #[test]
    fn an_exact_broker_is_left_as_it_is() {
        let exact = Watermarks {
            log_start: 3,
            high: 10,
        };
        assert_eq!(high_probe(exact), Some(9));
        assert_eq!(refined_high(exact, [9]), exact);
        assert_eq!(refined_high(exact, []), exact);
        let empty = Watermarks {
            log_start: 4,
            high: 4,
        };
        assert_eq!(high_probe(empty), None);
    }

    /// (name, batches of timestamps, (timestamp, expected offset) cases)
    type TimeCase = (&'static str, Vec<Vec<i64>>, &'static [(i64, i64)]);

    #[test]
    fn timestamp_table() {
        #[rustfmt::skip]
        let table: &[TimeCase] = &[
            ("empty partition", vec![], &[(0, 0), (100, 0)]),
            ("single-record batches", vec![vec![10], vec![20], vec![30]],
                &[(0, 0), (10, 0), (11, 1), (20, 1), (25, 2), (30, 2), (31, 3)]),
            ("one multi-record batch", vec![vec![10, 20, 30, 40]],
                &[(5, 0), (10, 0), (15, 1), (35, 3), (40, 3)]),
            ("multi-record batches", vec![vec![10, 20], vec![30, 40, 50]],
                &[(20, 1), (21, 2), (45, 4), (50, 4)]),
            ("a timestamp past the end", vec![vec![10, 20], vec![30, 40, 50]],
                &[(51, 5), (i64::MAX, 5)]),
            ("timestamps not monotonic", vec![vec![10, 40, 20], vec![30, 15]],
                &[(15, 1), (25, 1), (40, 1), (41, 5), (5, 0)]),
            ("not monotonic across batches", vec![vec![50, 60], vec![10, 20]],
                &[(15, 0), (55, 1), (61, 4)]),
        ];
        for (name, batches, cases) in table {
            let p = Partition {
                batches: batches.clone(),
            };
            for &(ts, want) in *cases {
                assert_eq!(
                    p.truth_for_time(ts),
                    want,
                    "{name}: the table itself at {ts}"
                );
                for max in [1, 2, 1000] {
                    assert_eq!(
                        p.offset_for_time(ts, max),
                        want,
                        "{name}: timestamp {ts}, reads of {max}"
                    );
                }
            }
        }
    }

    #[test]
    fn scan_start_clamps_the_answer() {
        let r = Watermarks {
            log_start: 5,
            high: 9,
        };
        assert_eq!(timestamp_scan_start(None, r), 9);
        assert_eq!(timestamp_scan_start(Some(-1), r), 9);
        assert_eq!(timestamp_scan_start(Some(0), r), 5);
        assert_eq!(timestamp_scan_start(Some(7), r), 7);
        assert_eq!(timestamp_scan_start(Some(20), r), 9);
        // nothing read at the start: the end
        assert_eq!(timestamp_scan_step(1, 9, r, []), TimeScan::End(9));
        assert_eq!(timestamp_scan_step(1, 6, r, []), TimeScan::End(9));
    }
}
