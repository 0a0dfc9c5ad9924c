"""Pools, nested subsets, language rebalancing and real image-text shards."""
