"""One module per top-K model (module name = the name ``rec.model`` takes)."""
