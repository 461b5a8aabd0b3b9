from tracerstack.stack import main

main()
