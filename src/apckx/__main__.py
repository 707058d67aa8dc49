from apckx._cli import main

raise SystemExit(main())
