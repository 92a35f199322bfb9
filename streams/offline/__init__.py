"""Offline work that never touches a stream: history files, replay (backtest), training, simulation, plots."""
