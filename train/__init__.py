"""Training: data, the LSTM model, the loop and run folders (`lstm-edge train`, `evaluate`)."""
