module leakwatch.example/lazyfree

go 1.19
