"""Stage 3: faces in each sampled frame, child or adult, and how much each smiles."""
