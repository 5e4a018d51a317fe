"""EEST: exact error backpropagation through spikes (Bacho & Chu, arXiv 2212.09500)."""
