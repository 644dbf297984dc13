module example.com/hello

go 1.26

require (
	github.com/golang-migrate/migrate/v4 v4.19.1
	github.com/lib/pq v1.10.9
)
