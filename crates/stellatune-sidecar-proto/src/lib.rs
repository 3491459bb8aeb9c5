//! Protocol between the player and its out-of-process audio output sidecar
//! (`stellatune-sidecar-host`).
//!
//! Two channels connect the two processes:
//!
//! * **Control**: length-prefixed JSON frames over the sidecar's stdin (requests) and stdout
//!   (responses); see [`encode_frame`], [`decode_frame`], [`write_frame`], [`read_frame`] and the
//!   [`Request`] / [`Response`] enums.
//! * **Audio**: one single-producer single-consumer ring of interleaved `f32` per stream, in a
//!   memory-mapped file created by the player ([`RingWriter`]) and opened by the sidecar
//!   ([`RingReader`]). Stale ring files left by crashed players are removed by
//!   [`reap_stale_rings`].
//!
//! [`client`] is the player's side of one sidecar process: spawn (through a process-starting
//! function the embedder injects), handshake, requests with timeouts, ring streams, stop.

pub mod client;
mod clock;
mod frame;
mod ring;

pub use client::{
    ClientEnv, ClientError, Fault, Launch, PARENT_PID_ENV, RingStream, Sidecar, Spawned, StopReason,
};
pub use clock::monotonic_ns;
pub use frame::{
    DeviceInfo, Frame, MAX_FRAME_BYTES, PROTOCOL_VERSION, ProtoError, Request, Response,
    decode_frame, encode_frame, read_frame, write_frame,
};
// Process identity lives in its own crate (the plugin host needs it too); re-exported because
// a ring's owner is part of this protocol.
pub use ring::{
    MAX_CHANNELS, MAX_RING_BYTES, RESET_FADE_MS, RING_HEADER_SIZE, RING_LAYOUT_VERSION, RING_MAGIC,
    ReadSchedule, RingError, RingReader, RingSpec, RingWriter, default_ring_dir, reap_stale_rings,
    ring_file_name, this_copy_ring_files, this_copy_ring_prefix, unique_ring_file_name,
};
pub use stellatune_process::{pid_alive, process_is_owner, process_start_time};
