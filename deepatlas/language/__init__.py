"""Language models: n-gram with Kneser-Ney smoothing, the autoregressive Transformer LM, and the
`generate` command shared by every text model."""
