"""Tables and figures: our results beside the paper's, every cell traceable to its metrics file."""
