"""What the bank does: one module per area. Takes an AppContext and plain values."""
