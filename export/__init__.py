"""Export: checkpoint to TFLite, parity on the edge runtimes, manifest (`lstm-edge export`)."""
