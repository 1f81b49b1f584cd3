"""Each framework's native model of every workload (`harness.training.workloads`).

A module here defines one ``Model`` class, imported only inside the training worker of its
framework. A ``Model(workload, dtype, params)`` builds the workload with the framework's own layers
and loss and loads ``params`` (canonical layout, float64 values exact in ``dtype``); then

* ``get()`` / ``set(params)``: the parameters in the canonical layout, float64;
* ``loss_grads(x, y)``: the batch loss and the gradients (canonical, float64) at the current
  parameters: what the float64 reference optimizer is fed in a closed loop;
* ``optimizer(target, args)``: the framework's own optimizer built from its native arguments,
  returned as ``step(x, y) -> (loss, gradient norm)``, one training step as users write it;
* ``evaluate(x, y)``: the loss and the accuracy (NaN for a regression) on the whole data set.

``determinism()`` sets the framework's determinism flags and pins it to one thread, so two runs
of a command give bit-identical tables on one machine, and the same on any core count.
"""
