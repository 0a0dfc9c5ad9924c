"""Analysis: the paper's figures and tables, drawn from the stages' tidy results."""
