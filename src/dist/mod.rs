//! Data-parallel training: one run over several processes (ranks), on one host or many,
//! through MPI (the `mpi` feature). Without it, or outside `mpirun`, a run is the one-rank
//! case of the same code path and every collective here is the identity.
//!
//! The rule that makes N ranks equal one process: at each step rank `r` views rows
//! `[r B / N, (r + 1) B / N)` of the global batch of `B` (with the augmentation draws of
//! those positions), embeds them, and [`World::gather_rows`] puts the whole batch back
//! together on every rank in the one-process row order. Every rank then computes the
//! same loss over the global batch; the gradient reaches only the rows it embedded, and
//! the sum of the ranks' parameter gradients ([`World::all_reduce_sum`]) is the
//! one-process gradient. Queues, banks, clusters and support sets see the same global
//! keys on every rank and so stay identical without further messages.

#[cfg(feature = "mpi")]
mod mpi_world;

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use burn::module::{ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::TensorData;

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
            c.all_reduce_sum(buf);
        }
        let _ = buf;
    }

    /// [`Self::all_reduce_sum`] in f64 (batch-norm sums over the global batch).
    pub fn all_reduce_sum_f64(&self, buf: &mut [f64]) {
        #[cfg(feature = "mpi")]
        if let Some(c) = &self.comm {
            c.all_reduce_sum_f64(buf);
        }
        let _ = buf;
    }

    /// Every rank's `local` values, concatenated in rank order, with each rank's count.
    pub fn all_gather(&self, local: &[f32]) -> (Vec<f32>, Vec<usize>) {
        #[cfg(feature = "mpi")]
        if let Some(c) = &self.comm {
            return c.all_gather(local);
        }
        (local.to_vec(), vec![local.len()])
    }

    /// [`Self::all_gather`] of integers.
    pub fn all_gather_u32(&self, local: &[u32]) -> Vec<u32> {
        #[cfg(feature = "mpi")]
        if let Some(c) = &self.comm {
            return c.all_gather_u32(local);
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
    /// process would have: rows are grouped by view, and within a view by rank, which is
    /// the order of positions in the global batch. Only this rank's rows carry `z`'s
    /// gradient: every rank computes the same loss over all rows, so the gradient of its
    /// own rows is all it owes, and the ranks' parameter gradients sum to the whole.
    pub fn gather_rows(&self, z: Tensor<2>, tags: &[Tag]) -> (Tensor<2>, Vec<Tag>) {
        if self.size == 1 {
            return (z, tags.to_vec());
        }
        let [rows, d] = z.dims();
        let host: Vec<f32> = z.clone().detach().into_data().iter::<f32>().collect();
        let (all, counts) = self.all_gather(&host);
        let all_tags = untag(&self.all_gather_u32(&tag_words(tags)));
        let device = z.device();
        let mut parts = Vec::with_capacity(self.size);
        let mut start = 0;
        for (r, &n) in counts.iter().enumerate() {
            let n_rows = n / d.max(1);
            if r == self.rank {
                debug_assert_eq!(n_rows, rows);
                parts.push(z.clone());
            } else if n_rows > 0 {
                let data = TensorData::new(all[start..start + n].to_vec(), [n_rows, d]);
                parts.push(Tensor::from_data(data, &device));
            }
            start += n;
        }
        let stacked = Tensor::cat(parts, 0);
        let mut order: Vec<usize> = (0..all_tags.len()).collect();
        order.sort_by_key(|&i| all_tags[i].view);
        let tags = order.iter().map(|&i| all_tags[i]).collect();
        (crate::model::select(&stacked, &order), tags)
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
