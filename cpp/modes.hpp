// Engine-wide modes, per thread as in PyTorch.
#pragma once
#include <cmath>

namespace ag {

// Gradient recording (`with ag.no_grad():` turns it off).
inline thread_local bool grad_enabled = true;

// `with ag.detect_anomaly():` the first NaN or infinity an op produces,
// forward or backward, raises FloatingPointError naming the op.
inline thread_local bool anomaly_enabled = false;

// The forward check: free unless the result is NaN or infinite.
inline bool anomalous(double y) { return !std::isfinite(y) && anomaly_enabled; }

}  // namespace ag
