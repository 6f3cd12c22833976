module klambda.local/pause

go 1.24
