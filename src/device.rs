//! [`Device`]: where a [`Session`](crate::Session) runs, and the CUDA half of a session
//! (feature `cuda`): the open GPU, the variables resident in its memory, and the device
//! executables cached per set of fetches and feeds.

use flumen_compiler::CompileReport;
use flumen_frontend::{Graph, NodeId, Result, Value};
use flumen_runtime::SessionState;

/// Where a session runs compiled code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Device {
    /// The host CPU (the Cranelift-JIT backend).
    #[default]
    Cpu,
    /// NVIDIA GPU number `.0` (CUDA ordinal). Needs the `cuda` feature at build time and,
    /// at run time, the NVIDIA driver, NVRTC and cuBLAS (CUDA 12); see docs/cuda.md.
    Cuda(usize),
}

impl Device {
    /// Check that the device can be used: always `Ok` for [`Device::Cpu`]; for
    /// [`Device::Cuda`] opens the GPU and returns the reason it cannot be used (built
    /// without the `cuda` feature, no NVIDIA driver, no NVRTC or cuBLAS library, no device
    /// with that ordinal). Tests use it to skip GPU checks on machines without one.
    pub fn check(self) -> Result<()> {
        match self {
            Device::Cpu => Ok(()),
            Device::Cuda(i) => CudaSession::open(i).map(|_| ()),
        }
    }

    /// A one-line description (the GPU's name and compute capability for CUDA devices).
    pub fn describe(self) -> Result<String> {
        match self {
            Device::Cpu => Ok("cpu".into()),
            Device::Cuda(i) => CudaSession::open(i).map(|s| s.describe()),
        }
    }
}

#[cfg(not(feature = "cuda"))]
pub(crate) use disabled::CudaSession;
#[cfg(feature = "cuda")]
pub(crate) use enabled::CudaSession;

#[cfg(not(feature = "cuda"))]
mod disabled {
    use super::*;

    /// Without the `cuda` feature no CUDA session can exist.
    pub(crate) enum CudaSession {}

    impl CudaSession {
        pub(crate) fn open(ordinal: usize) -> Result<CudaSession> {
            Err(flumen_frontend::GraphError::invalid(format!(
                "cuda: cannot use device Cuda({ordinal}): flumen was built without the `cuda` \
                 feature; rebuild with `--features cuda` (docs/cuda.md)"
            )))
        }
        pub(crate) fn describe(&self) -> String {
            match *self {}
        }
        pub(crate) fn ordinal(&self) -> usize {
            match *self {}
        }
        pub(crate) fn run(
            &mut self,
            _: &Graph,
            _: &mut SessionState,
            _: (Vec<NodeId>, Vec<NodeId>),
            _: &[&Value],
        ) -> Result<Vec<Value>> {
            match *self {}
        }
        pub(crate) fn compile_report(
            &mut self,
            _: &Graph,
            _: (Vec<NodeId>, Vec<NodeId>),
        ) -> Result<CompileReport> {
            match *self {}
        }
        pub(crate) fn sync(&mut self, _: &mut SessionState) -> Result<()> {
            match *self {}
        }
        pub(crate) fn clear_cache(&mut self) {
            match *self {}
        }
    }
}

#[cfg(feature = "cuda")]
mod enabled {
    use super::*;
    use flumen_runtime::cuda::{CudaDevice, CudaExecutable, DeviceVariables};
    use flumen_runtime::interpreter::executor;
    use std::collections::HashMap;
    use std::sync::Arc;

    type Key = (Vec<NodeId>, Vec<NodeId>);

    /// The CUDA state of a session.
    pub(crate) struct CudaSession {
        device: Arc<CudaDevice>,
        // Executables and variables hold the device too (an `Arc`), so it outlives the
        // memory they free with its context, whatever the drop order.
        cache: HashMap<Key, (CudaExecutable, CompileReport)>,
        vars: DeviceVariables,
    }

    impl CudaSession {
        pub(crate) fn open(ordinal: usize) -> Result<CudaSession> {
            let device = CudaDevice::open(ordinal)?;
            Ok(CudaSession {
                vars: DeviceVariables::new(device.clone()),
                device,
                cache: HashMap::new(),
            })
        }

        pub(crate) fn describe(&self) -> String {
            let i = self.device.info();
            format!(
                "cuda:{} {} (sm_{}{}, {} MiB)",
                i.ordinal,
                i.name,
                i.compute_capability.0,
                i.compute_capability.1,
                i.total_memory >> 20
            )
        }

        pub(crate) fn ordinal(&self) -> usize {
            self.device.info().ordinal
        }

        fn compiled(
            &mut self,
            graph: &Graph,
            key: &Key,
        ) -> Result<&mut (CudaExecutable, CompileReport)> {
            if !self.cache.contains_key(key) {
                let def = graph.def();
                let (program, report) = flumen_compiler::cuda::compile_cuda(&def, &key.1, &key.0)?;
                let exe = CudaExecutable::new(self.device.clone(), program)?;
                self.cache.insert(key.clone(), (exe, report));
            }
            Ok(self.cache.get_mut(key).expect("just inserted"))
        }

        pub(crate) fn run(
            &mut self,
            graph: &Graph,
            state: &mut SessionState,
            key: Key,
            feeds: &[&Value],
        ) -> Result<Vec<Value>> {
            self.compiled(graph, &key)?;
            let (exe, _) = self.cache.get_mut(&key).expect("compiled above");
            if exe
                .program()
                .variables
                .iter()
                .any(|v| !state.variables.contains_key(v))
            {
                graph.with_def(|def| {
                    let needed = def.reachable(&key.0, false);
                    executor::initialize_variables(def, &needed, state)
                })?;
            }
            exe.run(feeds, &mut self.vars, state)
        }

        pub(crate) fn compile_report(&mut self, graph: &Graph, key: Key) -> Result<CompileReport> {
            Ok(self.compiled(graph, &key)?.1.clone())
        }

        pub(crate) fn sync(&mut self, state: &mut SessionState) -> Result<()> {
            self.vars.sync(state)
        }

        pub(crate) fn clear_cache(&mut self) {
            self.cache.clear();
        }
    }
}
