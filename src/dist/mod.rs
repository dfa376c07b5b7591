//! Data-parallel training: one run over several processes (ranks), on one host or many,
//! through MPI (the `mpi` feature). Without it, or outside `mpirun`, a run is the one-rank
//! case of the same code path and every collective here is the identity.
//!
//! The rule that makes N ranks equal one process: at each step rank `r` views rows
//! `[r B / N, (r + 1) B / N)` of the global batch of `B` (with the augmentation draws of
//! those positions) and embeds them; [`World::gather_rows`] puts the whole batch together
//! on every rank, in the one-process row order, as a leaf of the loss's graph. For the
//! InfoNCE family each rank then scores only its own rows as queries against every key
//! (its share of the `B x B` matrix); other losses are computed whole on every rank.
//! The loss's gradient with respect to the whole batch is summed over the ranks (when
//! they split the queries) and each rank takes its own rows' part back through its
//! encoder ([`Ledger::local_loss`]); the parameter gradients, summed in one buffer
//! ([`all_reduce_grads`]), are the one-process gradient. Queues, banks, clusters and
//! support sets see the same global keys on every rank and stay identical without
//! further messages.

#[cfg(feature = "mpi")]
mod mpi_world;

use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

use burn::module::{ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::{Gradients, TensorData};

use crate::pairs::Tag;

/// The ranks of this run.
pub struct World {
    rank: usize,
    size: usize,
    /// Ranks on this host (for the compute threads each may use).
    local: usize,
    #[cfg(feature = "mpi")]
    comm: Option<mpi_world::Comm>,
}

static WORLD: OnceLock<World> = OnceLock::new();

/// The step (from 1) this process is running, 0 before the first: for the line a rank
/// writes when the launcher ends it mid-step.
static STEP: AtomicUsize = AtomicUsize::new(0);

/// Bytes this process has sent into collectives, and nanoseconds spent in them.
static SENT: AtomicU64 = AtomicU64::new(0);
static WAITED: AtomicU64 = AtomicU64::new(0);

/// Seconds spent in collectives and bytes sent into them so far.
pub fn comm_totals() -> (f64, u64) {
    (
        WAITED.load(Ordering::Relaxed) as f64 * 1e-9,
        SENT.load(Ordering::Relaxed),
    )
}

/// Counts one collective of `bytes` that took from `t0` until now.
#[cfg(feature = "mpi")]
fn counted(bytes: usize, t0: std::time::Instant) {
    SENT.fetch_add(bytes as u64, Ordering::Relaxed);
    WAITED.fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
}

/// Records that step `global` (from 0) is running.
pub fn at_step(global: usize) {
    STEP.store(global + 1, Ordering::Relaxed);
}

/// The step (from 1) running now, 0 before the first.
pub fn current_step() -> usize {
    STEP.load(Ordering::Relaxed)
}

/// The run's ranks: those [`init`] found, or one.
pub fn world() -> &'static World {
    WORLD.get_or_init(World::single)
}

/// Joins the MPI job this process was started in (`mpirun`), if any; returns a guard that
/// finalises MPI when dropped. Call once, first thing in `main`.
#[cfg(feature = "mpi")]
pub fn init() -> crate::Result<Option<mpi_world::Guard>> {
    let Some((world, guard)) = mpi_world::join()? else {
        return Ok(None);
    };
    WORLD
        .set(world)
        .map_err(|_| crate::Error::Invalid("dist::init called after the world was used".into()))?;
    Ok(Some(guard))
}

impl World {
    fn single() -> Self {
        Self {
            rank: 0,
            size: 1,
            local: 1,
            #[cfg(feature = "mpi")]
            comm: None,
        }
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Rank 0 writes the run directory and evaluates.
    pub fn is_root(&self) -> bool {
        self.rank == 0
    }

    /// Compute threads for this rank when the config leaves it open: the host's cores
    /// shared by the ranks on it.
    pub fn default_threads(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores / self.local.max(1)).max(1)
    }

    /// This rank's rows of a global batch of `n`: `[r n / N, (r + 1) n / N)`.
    pub fn slice(&self, n: usize) -> Range<usize> {
        part(self.rank, self.size, n)
    }

    /// Sums `buf` over the ranks, in place (the same result on every rank).
    pub fn all_reduce_sum(&self, buf: &mut [f32]) {
        #[cfg(feature = "mpi")]
        if let Some(c) = &self.comm {
            let t0 = std::time::Instant::now();
            c.all_reduce_sum(buf);
            counted(4 * buf.len(), t0);
        }
        let _ = buf;
    }

    /// [`Self::all_reduce_sum`] in f64 (batch-norm sums over the global batch).
    pub fn all_reduce_sum_f64(&self, buf: &mut [f64]) {
        #[cfg(feature = "mpi")]
        if let Some(c) = &self.comm {
            let t0 = std::time::Instant::now();
            c.all_reduce_sum_f64(buf);
            counted(8 * buf.len(), t0);
        }
        let _ = buf;
    }

    /// Every rank's `local` values, concatenated in rank order, with each rank's count.
    pub fn all_gather(&self, local: &[f32]) -> (Vec<f32>, Vec<usize>) {
        #[cfg(feature = "mpi")]
        if let Some(c) = &self.comm {
            let t0 = std::time::Instant::now();
            let out = c.all_gather(local);
            counted(4 * local.len(), t0);
            return out;
        }
        (local.to_vec(), vec![local.len()])
    }

    /// [`Self::all_gather`] of integers.
    pub fn all_gather_u32(&self, local: &[u32]) -> Vec<u32> {
        #[cfg(feature = "mpi")]
        if let Some(c) = &self.comm {
            let t0 = std::time::Instant::now();
            let out = c.all_gather_u32(local);
            counted(4 * local.len(), t0);
            return out;
        }
        local.to_vec()
    }

    /// The largest `v` of any rank, on every rank.
    pub fn max(&self, v: u32) -> u32 {
        #[cfg(feature = "mpi")]
        if let Some(c) = &self.comm {
            return c.max(v);
        }
        v
    }

    /// Rank 0's value of `v` on every rank.
    pub fn broadcast_u64(&self, v: u64) -> u64 {
        #[cfg(feature = "mpi")]
        if let Some(c) = &self.comm {
            return c.broadcast_u64(v);
        }
        v
    }

    /// Waits for every rank.
    pub fn barrier(&self) {
        #[cfg(feature = "mpi")]
        if let Some(c) = &self.comm {
            c.barrier();
        }
    }

    /// Ends every rank of the job with `code` (after this rank reported why): an error on
    /// one rank must not leave the others waiting in a collective.
    pub fn abort(&self, code: i32) -> ! {
        #[cfg(feature = "mpi")]
        if let Some(c) = &self.comm {
            c.abort(code);
        }
        std::process::exit(code)
    }

    /// The whole batch from each rank's rows `z` (tagged `tags`), in the row order one
    /// process would have: rows grouped by view, and within a view by rank, which is the
    /// order of positions in the global batch. On one rank it is `z` itself. On several,
    /// the whole batch is a new leaf of the autodiff graph and `ledger` keeps it with `z`:
    /// after the loss's backward, [`Ledger::local_loss`] hands this rank's rows their
    /// gradient (SimCLR's gather layer).
    pub fn gather_rows(
        &self,
        z: Tensor<2>,
        tags: &[Tag],
        ledger: &mut Ledger,
    ) -> (Tensor<2>, Vec<Tag>) {
        if self.size == 1 {
            return (z, tags.to_vec());
        }
        let d = z.dims()[1];
        let host: Vec<f32> = z.clone().detach().into_data().iter::<f32>().collect();
        let (all, counts) = self.all_gather(&host);
        let all_tags = untag(&self.all_gather_u32(&tag_words(tags)));
        let mine = {
            let before: usize = counts[..self.rank].iter().sum::<usize>() / d.max(1);
            before..before + counts[self.rank] / d.max(1)
        };
        let mut order: Vec<usize> = (0..all_tags.len()).collect();
        order.sort_by_key(|&i| all_tags[i].view);
        let data: Vec<f32> = order
            .iter()
            .flat_map(|&i| all[i * d..(i + 1) * d].iter().copied())
            .collect();
        let whole =
            Tensor::from_data(TensorData::new(data, [order.len(), d]), &z.device()).require_grad();
        // own[j]: where this rank's local row j sits in the whole batch
        let mut own = vec![0; mine.len()];
        for (at, &i) in order.iter().enumerate() {
            if mine.contains(&i) {
                own[i - mine.start] = at;
            }
        }
        ledger.entries.push(Entry {
            local: z,
            whole: whole.clone(),
            own,
        });
        (whole, order.iter().map(|&i| all_tags[i]).collect())
    }

    /// The whole batch of rows `z` computed without gradient (keys of a momentum encoder or
    /// a teacher), concatenated in rank order: one view's rows, so rank order is position
    /// order.
    pub fn gather_detached(&self, z: Tensor<2>) -> Tensor<2> {
        if self.size == 1 {
            return z;
        }
        let d = z.dims()[1];
        let host: Vec<f32> = z.clone().into_data().iter::<f32>().collect();
        let (all, _) = self.all_gather(&host);
        let rows = all.len() / d.max(1);
        Tensor::from_data(TensorData::new(all, [rows, d]), &z.device())
    }
}

/// The ids of every float parameter of `m`.
pub fn param_ids<M: Module>(m: &M) -> Vec<ParamId> {
    struct Ids(Vec<ParamId>);
    impl ModuleVisitor for Ids {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.id);
        }
    }
    let mut ids = Ids(Vec::new());
    m.visit(&mut ids);
    ids.0
}

/// Sums every parameter gradient of `model` over the ranks, in one buffer (one message
/// per step, not one per tensor). Each rank's gradient covers the rows it embedded
/// ([`World::gather_rows`]), so the sum is the one-process gradient. Parameters in
/// `replicated` act only after the gather (a predictor, a loss's own parameters): every
/// rank computes their whole gradient, so theirs is averaged instead.
pub fn all_reduce_grads<M: Module>(
    world: &World,
    grads: &mut GradientsParams,
    model: &M,
    replicated: &[ParamId],
) {
    struct Take<'a> {
        grads: &'a mut GradientsParams,
        buf: Vec<f32>,
        taken: Vec<(ParamId, Vec<usize>)>,
        device: Option<Device>,
    }
    impl ModuleVisitor for Take<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.remove::<D>(param.id) {
                self.taken.push((param.id, g.dims().to_vec()));
                self.device.get_or_insert_with(|| g.device());
                self.buf.extend(g.into_data().iter::<f32>());
            }
        }
    }
    struct Put<'a> {
        grads: &'a mut GradientsParams,
        buf: &'a [f32],
        taken: std::vec::IntoIter<(ParamId, Vec<usize>)>,
        at: usize,
        device: Device,
        replicated: &'a [ParamId],
        ranks: f32,
    }
    impl ModuleVisitor for Put<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if self
                .taken
                .as_slice()
                .first()
                .is_some_and(|t| t.0 == param.id)
            {
                let Some((id, shape)) = self.taken.next() else {
                    return;
                };
                let n: usize = shape.iter().product();
                let mut values = self.buf[self.at..self.at + n].to_vec();
                if self.replicated.contains(&id) {
                    values.iter_mut().for_each(|v| *v /= self.ranks);
                }
                let data = TensorData::new(values, shape);
                self.grads
                    .register::<D>(id, Tensor::from_data(data, &self.device));
                self.at += n;
            }
        }
    }
    let mut take = Take {
        grads,
        buf: Vec::new(),
        taken: Vec::new(),
        device: None,
    };
    model.visit(&mut take);
    let (mut buf, taken) = (take.buf, take.taken);
    let Some(device) = take.device else {
        return;
    };
    world.all_reduce_sum(&mut buf);
    let mut put = Put {
        grads,
        buf: &buf,
        taken: taken.into_iter(),
        at: 0,
        device,
        replicated,
        ranks: world.size() as f32,
    };
    model.visit(&mut put);
}

/// The gathers of one step: each rank's rows and the whole batch built from them.
#[derive(Default)]
pub struct Ledger {
    entries: Vec<Entry>,
}

struct Entry {
    /// This rank's rows, carrying the graph back to its parameters.
    local: Tensor<2>,
    /// The whole batch, a leaf.
    whole: Tensor<2>,
    /// Where each local row sits in `whole`.
    own: Vec<usize>,
}

impl Ledger {
    /// Whether the step gathered anything (it does on several ranks only).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Where this rank's rows sit in the concatenation of the whole batches gathered so
    /// far, in gather order.
    pub fn own_rows(&self) -> Vec<usize> {
        let mut offset = 0;
        let mut rows = Vec::new();
        for e in &self.entries {
            rows.extend(e.own.iter().map(|&r| r + offset));
            offset += e.whole.dims()[0];
        }
        rows.sort_unstable();
        rows
    }

    /// A loss whose gradient through this rank's rows is their share of the loss's
    /// gradient `grads` through the whole batches: `sum_j <z_j, g_j>` with `g_j` the row
    /// of `dL/dZ` where local row `j` sits. When each rank computed only its own queries'
    /// part of the loss (`split`), `dL/dZ` is first summed over the ranks: keys get
    /// gradient from every rank's queries. When every rank computed the whole loss, its
    /// own `dL/dZ` is already the whole gradient.
    pub fn local_loss(self, grads: &Gradients, world: &World, split: bool) -> Option<Tensor<1>> {
        let mut total: Option<Tensor<1>> = None;
        for e in self.entries {
            // every rank takes part in the sum, with zeros where its loss did not reach
            let [rows, d] = e.whole.dims();
            let mut g: Vec<f32> = match e.whole.grad(grads) {
                Some(g) => g.into_data().iter::<f32>().collect(),
                None if split => vec![0.0; rows * d],
                None => continue,
            };
            if split {
                world.all_reduce_sum(&mut g);
            }
            debug_assert_eq!(g.len(), rows * d);
            let mine: Vec<f32> = e
                .own
                .iter()
                .flat_map(|&r| g[r * d..(r + 1) * d].iter().copied())
                .collect();
            let device = e.local.device();
            let g = Tensor::<2>::from_data(TensorData::new(mine, [e.own.len(), d]), &device);
            let term = (e.local * g).sum();
            total = Some(match total {
                Some(t) => t + term,
                None => term,
            });
        }
        total
    }
}

/// Adds the parameter gradients of `from` into `into`.
pub fn merge_grads<M: Module>(into: &mut GradientsParams, mut from: GradientsParams, model: &M) {
    struct Merge<'a> {
        into: &'a mut GradientsParams,
        from: &'a mut GradientsParams,
    }
    impl ModuleVisitor for Merge<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.from.remove::<D>(param.id) {
                let g = match self.into.remove::<D>(param.id) {
                    Some(h) => h + g,
                    None => g,
                };
                self.into.register::<D>(param.id, g);
            }
        }
    }
    model.visit(&mut Merge {
        into,
        from: &mut from,
    });
}

/// Rank `r` of `n` ranks: rows `[r len / n, (r + 1) len / n)` of `len`.
pub fn part(r: usize, n: usize, len: usize) -> Range<usize> {
    r * len / n..(r + 1) * len / n
}

/// Tags as five words each, for the wire.
fn tag_words(tags: &[Tag]) -> Vec<u32> {
    tags.iter()
        .flat_map(|t| [t.instance, t.label, u32::from(t.view), t.time, t.cluster])
        .collect()
}

fn untag(words: &[u32]) -> Vec<Tag> {
    words
        .chunks_exact(5)
        .map(|w| Tag {
            instance: w[0],
            label: w[1],
            view: w[2] as u16,
            time: w[3],
            cluster: w[4],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_batch_in_order() {
        for (n, len) in [(1, 7), (2, 8), (2, 7), (3, 10), (4, 3)] {
            let parts: Vec<_> = (0..n).map(|r| part(r, n, len)).collect();
            assert_eq!(parts[0].start, 0);
            assert_eq!(parts[n - 1].end, len);
            assert!(parts.windows(2).all(|w| w[0].end == w[1].start));
            assert!(parts
                .iter()
                .all(|p| p.len() + 1 >= len / n && p.len() <= len / n + 1));
        }
    }

    #[test]
    fn tags_round_trip_through_words() {
        let t = vec![
            Tag {
                time: 3,
                cluster: 7,
                ..Tag::new(5, 2, 1)
            },
            Tag::new(9, u32::MAX, 0),
        ];
        assert_eq!(untag(&tag_words(&t)), t);
    }
}
