"""The reproduction report: generated inputs from the stages' records, typeset to paper/main.pdf."""
