module github.com/org/deploy-kit

go 1.26.8

require github.com/sethvargo/go-githubactions v1.3.0
