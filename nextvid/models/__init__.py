"""Model code: encoder, predictors, flow decoder, targets, and the pretraining objectives."""
