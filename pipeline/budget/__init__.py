"""Client-side rate budget: concurrency, RPM, TPM (sliding 60 s) and TPD, learning from 429s."""
