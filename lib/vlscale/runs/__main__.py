"""`python -m vlscale.runs --digests`: the digests of every stage's sources, to record in runs/current.py."""
from vlscale.runs.current import main

main()
