"""A small image VAE trained by the workflow on the pretraining mixture, so that a `vae` generation
target (docs/method.md §2 "Targets", paper Table 3) exists offline: `config` (what is trained, torch-free),
`model` (the diffusers AutoencoderKL and its loss), `data` (training and held-out frames), `evaluate`
(reconstruction PSNR, the down-up-sampling baseline, latent statistics), `train` (the run and its
output directory). docs/vae.md has the measured numbers."""
