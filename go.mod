module github.com/org/deploy-kit

go 1.26

require (
	github.com/compose-spec/compose-go/v2 v2.16.2
	github.com/sethvargo/go-githubactions v1.3.0
	github.com/stretchr/testify v1.12.1
	go.yaml.in/yaml/v3 v3.0.5
)

require (
	github.com/sirupsen/logrus v1.10.1 // indirect
	golang.org/x/sys v0.13.0 // indirect
)
