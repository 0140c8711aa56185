"""Runner layer: the only place processes are started."""
