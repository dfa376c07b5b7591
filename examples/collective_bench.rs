//! Latency and bandwidth of the collectives a data-parallel step uses, for the cost
//! model in docs/scale-out.md: all-reduce (sum) of f32 buffers of 4 B to 16 MB and the
//! all-gather of embeddings, median of 20 repeats each, printed by rank 0.
//!
//! usage: mpirun -np 2 target/release/examples/collective_bench
//! (`cargo build --release --features mpi --example collective_bench`; across the
//! namespaces of scripts/netns-hosts.sh: `scripts/netns-hosts.sh run $PWD/target/...`)

use std::time::Instant;

/// Median seconds of 20 runs of `f` (after 3 unmeasured), each started together.
fn timed(world: &contrastive::dist::World, mut f: impl FnMut()) -> f64 {
    let mut times = Vec::new();
    for i in 0..23 {
        world.barrier();
        let t0 = Instant::now();
        f();
        if i >= 3 {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let _mpi = contrastive::dist::init().expect("MPI");
    let world = contrastive::dist::world();
    let root = world.is_root();
    if root {
        println!("ranks: {}", world.size());
        println!("| collective | bytes per rank | median ms | GB/s (algorithmic) |");
        println!("|---|---|---|---|");
    }
    for bytes in [4usize, 4 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20] {
        let mut buf = vec![1.0f32; bytes / 4];
        let t = timed(world, || world.all_reduce_sum(&mut buf));
        if root {
            println!(
                "| all-reduce | {bytes} | {:.3} | {:.2} |",
                t * 1e3,
                bytes as f64 / t / 1e9
            );
        }
    }
    for bytes in [64usize << 10, 1 << 20] {
        let local = vec![1.0f32; bytes / 4];
        let t = timed(world, || {
            world.all_gather(&local);
        });
        if root {
            println!(
                "| all-gather | {bytes} | {:.3} | {:.2} |",
                t * 1e3,
                bytes as f64 / t / 1e9
            );
        }
    }
}
