//! The MPI side of [`super::World`] (rsmpi over the system's Open MPI).

use std::sync::Mutex;

use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::environment::{Threading, Universe};
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::*;

use super::World;
use crate::error::{Error, Result};

/// MPI's world communicator. MPI is initialised with `Threading::Serialized` (calls from
/// any thread, one at a time) and every call holds the mutex, which is what makes sharing
/// the handle between threads sound.
pub(super) struct Comm(Mutex<SimpleCommunicator>);

// SAFETY: the communicator is a handle into the MPI library, initialised for serialized
// use from any thread; the mutex serialises every call through it.
unsafe impl Send for Comm {}
// SAFETY: as above; `&Comm` only reaches the handle through the mutex.
unsafe impl Sync for Comm {}

/// Keeps MPI initialised; dropping it finalises MPI (every rank must reach it).
pub struct Guard {
    _universe: Universe,
}

/// Whether the process was started by an MPI launcher.
fn launched() -> bool {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
}

/// Initialises MPI when started under `mpirun`; `None` otherwise (one rank, no MPI).
pub(super) fn join() -> Result<Option<(World, Guard)>> {
    if !launched() {
        return Ok(None);
    }
    let (universe, threading) = mpi::initialize_with_threading(Threading::Serialized)
        .ok_or_else(|| Error::Invalid("MPI was already initialised".into()))?;
    if threading < Threading::Serialized {
        return Err(Error::Invalid(format!(
            "MPI gives {threading:?} threading; training needs Serialized"
        )));
    }
    let comm = universe.world();
    let local = comm.split_shared(comm.rank()).size() as usize;
    let world = World {
        rank: comm.rank() as usize,
        size: comm.size() as usize,
        local,
        comm: Some(Comm(Mutex::new(comm))),
    };
    Ok(Some((
        world,
        Guard {
            _universe: universe,
        },
    )))
}

impl Comm {
    fn with<T>(&self, f: impl FnOnce(&SimpleCommunicator) -> T) -> T {
        let c = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&c)
    }

    pub(super) fn all_reduce_sum(&self, buf: &mut [f32]) {
        let send = buf.to_vec();
        self.with(|c| c.all_reduce_into(&send[..], buf, SystemOperation::sum()));
    }

    pub(super) fn all_reduce_sum_f64(&self, buf: &mut [f64]) {
        let send = buf.to_vec();
        self.with(|c| c.all_reduce_into(&send[..], buf, SystemOperation::sum()));
    }

    pub(super) fn all_gather(&self, local: &[f32]) -> (Vec<f32>, Vec<usize>) {
        self.with(|c| {
            let counts = counts(c, local.len());
            let mut all = vec![0f32; counts.iter().sum::<i32>() as usize];
            let displs = displacements(&counts);
            let mut part = PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
            c.all_gather_varcount_into(local, &mut part);
            (all, counts.iter().map(|&n| n as usize).collect())
        })
    }

    pub(super) fn all_gather_u32(&self, local: &[u32]) -> Vec<u32> {
        self.with(|c| {
            let counts = counts(c, local.len());
            let mut all = vec![0u32; counts.iter().sum::<i32>() as usize];
            let displs = displacements(&counts);
            let mut part = PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
            c.all_gather_varcount_into(local, &mut part);
            all
        })
    }

    pub(super) fn max(&self, v: u32) -> u32 {
        let mut out = 0u32;
        self.with(|c| c.all_reduce_into(&v, &mut out, SystemOperation::max()));
        out
    }

    pub(super) fn broadcast_u64(&self, v: u64) -> u64 {
        let mut v = v;
        self.with(|c| c.process_at_rank(0).broadcast_into(&mut v));
        v
    }

    pub(super) fn barrier(&self) {
        self.with(|c| c.barrier());
    }

    pub(super) fn abort(&self, code: i32) -> ! {
        let c = self.0.lock().unwrap_or_else(|e| e.into_inner());
        c.abort(code)
    }
}

/// Every rank's count of `n`.
fn counts(c: &SimpleCommunicator, n: usize) -> Vec<i32> {
    let mut counts = vec![0i32; c.size() as usize];
    c.all_gather_into(&(n as i32), &mut counts[..]);
    counts
}

fn displacements(counts: &[i32]) -> Vec<i32> {
    counts
        .iter()
        .scan(0, |acc, &n| {
            let d = *acc;
            *acc += n;
            Some(d)
        })
        .collect()
}
