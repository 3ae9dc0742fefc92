"""Training: labeled posts to a versioned model folder (`python -m training --help`)."""
